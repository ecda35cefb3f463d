"""A small web app served on 127.0.0.1 inside the caller's event loop, for as long as a block runs.

The demo's SMS provider runs beside the processes the demo supervises, and the tests' SMS provider
beside the server under test; both need the same start (wait until uvicorn listens, or say why it
cannot) and the same stop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import uvicorn


@contextlib.asynccontextmanager
async def serving(app: Any, port: int) -> AsyncIterator[asyncio.Task[None]]:
    """``app`` listening on 127.0.0.1:``port`` inside the block; the server's task, which ends only if it fails."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()  # the port could not be taken: uvicorn says why
                raise RuntimeError(f"127.0.0.1:{port} could not be served")
            await asyncio.sleep(0.02)
        yield task
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
