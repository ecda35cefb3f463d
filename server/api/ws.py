"""The console's live feed: new and changed cases and calls, pushed as they happen; and the
console's own messages about calls (joining, ending)."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets

from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status

from server.api import call_messages
from server.api.auth import operator_json
from server.api.deps import SESSION_COOKIE, Operator, actor, get_ws_state, operator_from_token
from server.api.origin import refuse_foreign_origin
from server.api.state import ServerState
from server.live_feed import Subscriber

logger = logging.getLogger(__name__)
router = APIRouter(tags=["live"])


@router.websocket("/api/ws")
async def live(websocket: WebSocket) -> None:
    state = get_ws_state(websocket)
    if await refuse_foreign_origin(websocket, state.cfg):
        return
    operator = await operator_from_token(state, websocket.cookies.get(SESSION_COOKIE))
    if operator is None:
        await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason="login required")
        return
    await websocket.accept()
    sub = state.hub.subscribe(operator.visible_units)
    receiver: asyncio.Task[None] | None = None
    try:
        # The client loads the queue over HTTP after "hello"; anything opened meanwhile is
        # already queued here, so nothing falls between the two.
        await websocket.send_json({"type": "hello", "operator": operator_json(operator)})
        receiver = asyncio.create_task(_read_client(websocket, state, operator, sub))
        receiver.add_done_callback(lambda _: sub.close())
        while events := await sub.take():
            if sub.overflowed:
                await websocket.close(code=status.WS_1013_TRY_AGAIN_LATER, reason="fell behind; reload")
                break
            for event in events:
                await websocket.send_text(event)
    except WebSocketDisconnect:
        pass
    finally:
        if receiver is not None:
            receiver.cancel()
        state.hub.unsubscribe(sub)


async def _read_client(websocket: WebSocket, state: ServerState, operator: Operator, sub: Subscriber) -> None:
    """Call messages from the console, answered through its feed so that one task writes the
    socket; reading is also how a closed socket is noticed, and the console's calls left."""
    viewer = secrets.token_hex(8)
    by = actor(operator, websocket)
    try:
        while True:
            reply = await call_messages.handle(state, operator, by, viewer, await websocket.receive_text())
            sub.put(json.dumps(reply, ensure_ascii=False))
    except WebSocketDisconnect:
        return
    finally:
        if state.calls is not None:
            await state.calls.leave(viewer)
        if state.phone_calls is not None:
            await state.phone_calls.leave(viewer)
