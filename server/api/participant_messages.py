"""What a console may say on its live WebSocket about the parties' phones in a call
(``server.calls.participants``): the list, a tile of one phone (an offer to receive its video and
sound), a still of it, muting it for the consoles, dropping it; and a still of a call whose source
is the reporting phone. Refusals come back as ``call.error`` with the reason, as for the call's own
messages."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from protocol.ids import REPORT_ID_PATTERN
from server.api.deps import Operator
from server.api.state import ServerState
from server.casework.events import Actor
from server.errors import DomainError

logger = logging.getLogger(__name__)


class ParticipantMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["participant.list", "participant.watch", "participant.still", "participant.mute", "participant.drop"]
    call_id: Annotated[str, Field(pattern=REPORT_ID_PATTERN)]
    party_id: int | None = None  # participant.still: None for the reporting phone's own video
    sdp: Annotated[str, Field(min_length=10, max_length=16 * 1024)] | None = None
    muted: bool = True


def wants(raw: object) -> bool:
    return isinstance(raw, dict) and str(raw.get("type", "")).startswith("participant.")


async def handle(state: ServerState, operator: Operator, actor: Actor, viewer: str, raw: object) -> dict[str, Any]:
    try:
        message = ParticipantMessage.model_validate(raw)
    except ValidationError as exc:
        logger.warning("operator %d: participant message refused: %s", operator.id, str(exc).splitlines()[0])
        return {"type": "call.error", "call_id": None, "reason": "malformed message"}
    phones = state.phone_calls
    if phones is None:
        return {"type": "call.error", "call_id": message.call_id, "reason": "this server worker does not take calls"}
    call_id, party_id, sees = message.call_id, message.party_id, operator.sees
    try:
        if message.type == "participant.list":
            return phones.listing(call_id, sees)
        if message.type == "participant.still":
            evidence = await phones.still(call_id, party_id, actor, sees)
            return {"type": "participant.still", "call_id": call_id, "party_id": party_id, "evidence_id": evidence.id}
        if party_id is None:
            return {"type": "call.error", "call_id": call_id, "reason": "which party's phone?"}
        if message.type == "participant.mute":
            await phones.mute(call_id, party_id, message.muted, actor, sees)
            return {"type": "participant.muted", "call_id": call_id, "party_id": party_id, "muted": message.muted}
        if message.type == "participant.drop":
            await phones.drop(call_id, party_id, actor, sees)
            return {"type": "participant.dropped", "call_id": call_id, "party_id": party_id}
        if message.sdp is None:
            return {"type": "call.error", "call_id": call_id, "reason": "a tile needs the console's offer"}
        answer = await phones.watch(call_id, party_id, viewer, sees, message.sdp)
    except DomainError as exc:
        return {"type": "call.error", "call_id": call_id, "reason": str(exc)}
    return {"type": "participant.answer", "call_id": call_id, "party_id": party_id, "sdp": answer}
