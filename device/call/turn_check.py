"""Why a relay-only unit got no TURN relay, asked of the TURN server itself.

aioice gathers the relay candidate and drops the reason when that fails, so a unit behind a
firewall that allows only TURN would just never connect. The agent asks here once an offer comes
out without a relay candidate, and logs the answer: no TURN server configured, the server
unreachable, or the server refusing the unit's credentials.
"""

from __future__ import annotations

import asyncio

from aioice import stun
from aioice.turn import create_turn_endpoint
from aiortc.rtcicetransport import parse_stun_turn_uri

from runtime.ice import IceServer

PROBE_TIMEOUT_S = 5.0


def has_relay_candidate(sdp: str) -> bool:
    return " typ relay" in sdp


async def relay_problem(servers: list[IceServer], timeout_s: float = PROBE_TIMEOUT_S) -> str:
    """One TURN allocation, made and released, to say what stops the relay."""
    turn = [(server, url) for server in servers for url in server.urls if url.startswith("turn")]
    if not turn:
        return "no TURN server in [webrtc] ice_servers"
    server, url = turn[0]  # aiortc uses the first TURN server only
    parsed = parse_stun_turn_uri(url)
    try:
        async with asyncio.timeout(timeout_s):
            transport, _ = await create_turn_endpoint(
                asyncio.DatagramProtocol,
                server_addr=(parsed["host"], parsed["port"]),
                username=server.username,
                password=server.credential,
                ssl=parsed["scheme"] == "turns",
                transport=parsed["transport"],
            )
    except stun.TransactionFailed as exc:
        code, reason = exc.response.attributes.get("ERROR-CODE", (0, "no reason given"))
        if code == 401:
            return f"TURN server {url} refused the credentials of user {server.username!r} ({code} {reason})"
        return f"TURN server {url} refused the allocation ({code} {reason})"
    except (TimeoutError, stun.TransactionTimeout):
        return f"TURN server {url} did not answer within {timeout_s:.0f} s"
    except OSError as exc:
        return f"TURN server {url} unreachable: {exc}"
    transport.close()
    return f"TURN server {url} allocates now; it did not while the offer was made"
