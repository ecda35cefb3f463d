"""A dispatcher's console as its own process: prints ``DEVICE_ID EPOCH_SECONDS`` per new case.

The latency benchmark runs its simulated fleet in one busy process; reading the WebSocket there
would time the fleet's event loop, not the moment the case reached the console. This process does
nothing else, so the time it prints is when the event arrived.

    python -m bench.console_observer WS_URL COOKIE
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import websockets


async def observe(url: str, cookie: str) -> None:
    async with websockets.connect(url, additional_headers={"Cookie": cookie}) as ws:
        await ws.recv()  # hello
        print("ready", flush=True)
        async for raw in ws:
            event = json.loads(raw)
            if event.get("type") == "case.new":
                print(event["case"]["device_id"], f"{time.time():.6f}", flush=True)


if __name__ == "__main__":
    asyncio.run(observe(sys.argv[1], sys.argv[2]))
