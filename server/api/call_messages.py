"""What a console may say about calls on its live WebSocket, and the answers it gets.

Joining a call is an SDP offer from the browser (video to receive, its microphone to send), with
every candidate gathered, and the server's answer; ending one is a message too, and so is asking
the unit for a still, for the seconds before the dispatcher's click (``clip.take``: the click is
stamped as the message arrives, by the server's clock, not by whatever the browser's machine says)
or before the report's press (``report_clip.take``): the answer names the upload, and the evidence
arrives later on the feed (``evidence.new``). These go over the socket rather than HTTP because the
operator, the call and the replies already live there, and the evidence comes back on it. Anything
malformed, or about a call the operator does not serve, gets a ``call.error`` naming the reason,
and nothing else happens.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from protocol.ids import REPORT_ID_PATTERN
from protocol.messages import PRETRIGGER_MAX_S, EvidenceKind
from server.api import participant_messages
from server.api.deps import Operator
from server.api.state import ServerState
from server.calls.manager import CallError
from server.cases import now_utc
from server.casework.events import Actor
from server.errors import DomainError

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 20 * 1024


class ConsoleMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["call.join", "call.end", "still.take", "clip.take", "report_clip.take"]
    call_id: Annotated[str, Field(pattern=REPORT_ID_PATTERN)]
    sdp: Annotated[str, Field(min_length=10, max_length=16 * 1024)] | None = None
    seconds: Annotated[int, Field(ge=1, le=PRETRIGGER_MAX_S)] = 10  # clips: how much before the click or press


async def handle(state: ServerState, operator: Operator, actor: Actor, viewer: str, text: str) -> dict[str, Any]:
    """One message from a console; returns the reply to send it. ``actor`` is the operator as the
    case log names them, from the console's address."""
    try:
        if len(text) > MAX_MESSAGE_BYTES:
            raise ValueError("message too large")
        raw = json.loads(text)
        if participant_messages.wants(raw):  # the parties' phones in the call
            return await participant_messages.handle(state, operator, actor, viewer, raw)
        message = ConsoleMessage.model_validate(raw)
    except (ValueError, ValidationError) as exc:
        logger.warning("operator %d: console message refused: %s", operator.id, str(exc).splitlines()[0])
        return {"type": "call.error", "call_id": None, "reason": "malformed message"}
    calls, uploads = state.calls, state.uploads
    if calls is None or uploads is None:
        return {"type": "call.error", "call_id": message.call_id, "reason": "this server worker does not take calls"}
    try:
        phones = state.phone_calls
        if message.type == "still.take" and phones is not None and phones.is_phone_call(message.call_id):
            evidence = await phones.still(message.call_id, None, actor, operator.sees)  # evidence.new follows
            return {"type": "participant.still", "call_id": message.call_id, "evidence_id": evidence.id}
        if message.type in ("still.take", "clip.take", "report_clip.take"):
            kind = EvidenceKind.STILL if message.type == "still.take" else EvidenceKind.CLIP
            until = now_utc() if message.type == "clip.take" else None
            upload_id = await uploads.request(kind, message.call_id, actor, operator.sees, message.seconds, until)
            return {"type": "evidence.requested", "call_id": message.call_id, "upload_id": upload_id, "kind": kind}
        if message.type == "call.end":
            await calls.end_by(message.call_id, actor, operator.sees)
            return {"type": "call.ended", "call_id": message.call_id}
        if message.sdp is None:
            raise CallError("a join carries the console's offer")
        answer = await calls.join(message.call_id, viewer, actor, operator.sees, message.sdp, operator.display_name)
    except (CallError, DomainError) as exc:  # ending a call refuses as the HTTP route does
        return {"type": "call.error", "call_id": message.call_id, "reason": str(exc)}
    return {"type": "call.answer", "call_id": message.call_id, "sdp": answer}
