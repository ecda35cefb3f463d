"""The console's live feed: new and changed cases, pushed as they happen."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status

from server.api.auth import operator_json
from server.api.deps import SESSION_COOKIE, get_ws_state, operator_from_token

logger = logging.getLogger(__name__)
router = APIRouter(tags=["live"])


@router.websocket("/api/ws")
async def live(websocket: WebSocket) -> None:
    state = get_ws_state(websocket)
    operator = await operator_from_token(state, websocket.cookies.get(SESSION_COOKIE))
    if operator is None:
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason="login required")
        return
    await websocket.accept()
    sub = state.hub.subscribe(operator.visible_units)
    try:
        # The client loads the queue over HTTP after "hello"; anything opened meanwhile is
        # already queued here, so nothing falls between the two.
        await websocket.send_json({"type": "hello", "operator": operator_json(operator)})
        receiver = asyncio.create_task(_drain_client(websocket))
        while not receiver.done():
            getter = asyncio.create_task(sub.queue.get())
            done, _ = await asyncio.wait({getter, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if getter in done:
                await websocket.send_text(getter.result())
            else:
                getter.cancel()
            if sub.overflowed:
                await websocket.close(code=status.WS_1013_TRY_AGAIN_LATER, reason="fell behind; reload")
                break
        receiver.cancel()
    except WebSocketDisconnect:
        pass
    finally:
        state.hub.unsubscribe(sub)


async def _drain_client(websocket: WebSocket) -> None:
    """The console sends nothing but pings; reading is how a closed socket is noticed."""
    try:
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        return
