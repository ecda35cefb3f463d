"""The security headers every response carries: the console's and the parties' pages, their scripts,
and the API.

The pages hold case files and identity numbers, so a script that got into one (a party's name
rendered as HTML by a future mistake, say) must not run, and no other site may frame them to trick a
click. The Content-Security-Policy lets a page run only the project's own script files: no inline
script or style, no ``eval``, no plug-ins; pictures may also be ``data:`` (the QR code, a plate's
crop) and ``blob:`` (a photo before upload), as may media (a recording played back). Every page
keeps its script and style in files under ``/static`` and ``/p/static`` for this; the browser tests
load each page and fail on any violation. HSTS is added by ``server/api/https.py`` where the worker
serves HTTPS.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers that predate it
    # The parties' links carry their token in the address: no page ever tells another site where it was.
    "Referrer-Policy": "no-referrer",
}


class SecurityHeaders:
    """ASGI middleware: ``HEADERS`` on every HTTP response, unless a route set its own."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, with_headers)
