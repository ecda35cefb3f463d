"""Ending an aiortc peer connection without waiting on a peer that is gone; both ends use it."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiortc import RTCPeerConnection

logger = logging.getLogger(__name__)

CLOSE_WITHIN_S = 5.0


async def close_peer(pc: RTCPeerConnection, what: str, within_s: float = CLOSE_WITHIN_S) -> None:
    """Close ``pc``, giving up after ``within_s``.

    aiortc's close says goodbye on every transport (RTCP BYE, SCTP abort, DTLS close_notify, TURN
    deallocation) and waits on each; towards a peer or relay that is gone it has been seen to wait
    indefinitely (aiortc#283, aioice#12). Nothing of the call depends on that goodbye, while the end
    of a call, a unit's next attempt and a worker's shutdown would all wait behind it.
    """
    try:
        async with asyncio.timeout(within_s):
            await pc.close()
    except TimeoutError:
        logger.warning("%s: the peer connection did not close within %g s; abandoned", what, within_s)
