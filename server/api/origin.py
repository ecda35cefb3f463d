"""Which pages may open the live WebSockets.

A browser sends the session cookie with a WebSocket handshake whatever page opens it, and the
same-origin policy does not apply to WebSockets: without this check a page on another site, opened
by a logged-in dispatcher, could read the dispatcher's live feed and speak on their calls. The
browser names the page's site in ``Origin``; it must be the address the socket was opened at (the
``Host``), the deployment's ``public_url``, or one of ``[http] allowed_origins``. A client with no
``Origin`` is not a browser, so no other site's page can be behind it.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

from fastapi import WebSocket, status

from server.config import ServerConfig

logger = logging.getLogger(__name__)


def _site(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def origin_allowed(origin: str | None, host: str | None, cfg: ServerConfig) -> bool:
    if origin is None:
        return True
    if host is not None and urlsplit(origin).netloc.lower() == host.lower():
        return True
    return _site(origin) in {_site(url) for url in [cfg.public_url, *cfg.http.allowed_origins]}


async def refuse_foreign_origin(websocket: WebSocket, cfg: ServerConfig) -> bool:
    """Close a handshake from another site's page (before accepting it: the browser sees a 403);
    whether it was closed."""
    origin = websocket.headers.get("origin")
    if origin_allowed(origin, websocket.headers.get("host"), cfg):
        return False
    logger.warning("live socket %s refused: opened from the page of another site, %r", websocket.url.path, origin)
    await websocket.close(code=status.WS_1008_POLICY_VIOLATION, reason="foreign origin")
    return True
