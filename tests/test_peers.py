"""Closing a peer connection never waits on a peer that is gone."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest
from aiortc import RTCPeerConnection

from runtime.peers import close_peer


async def test_a_real_connection_is_closed() -> None:
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    await close_peer(pc, "test")
    assert pc.connectionState == "closed"


class StuckClose:
    """A connection whose goodbye never completes, as aiortc's has towards a vanished peer."""

    def __init__(self) -> None:
        self.cancelled = False

    async def close(self) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise


async def test_a_close_that_never_completes_is_abandoned_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    stuck = StuckClose()
    await close_peer(cast(RTCPeerConnection, stuck), "call 42", within_s=0.2)
    assert stuck.cancelled
    assert "call 42: the peer connection did not close within 0.2 s; abandoned" in caplog.text
