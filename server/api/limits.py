"""The most a request body may carry, by route, enforced before a route reads it.

Without a limit a stranger could send a 50 MB "username" to ``/api/login``: the worker read it all,
parsed it, and held it in memory while it did. Every body is now limited where it comes in: a body
that announces more than its route allows (``Content-Length``) is refused before a byte is read, and
one sent in chunks is cut off at the limit. The refusal is the console's contract (``detail`` in
Chinese, ``code`` ``too_large``) and never carries any of what was sent.

JSON forms get ``JSON_MAX``: the longest text a form takes is a few thousand characters, which is far
less even written as ``\\uXXXX`` escapes. The routes that take files get what their own checks allow
(a photo chunk, a review's attachments, a determination PDF), so the limit here never refuses what
the route would have taken; the route still checks the file itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.api.state import ServerState

JSON_MAX = 64 * 1024
FORM_OVERHEAD = 64 * 1024  # a multipart form's boundaries, headers and text fields around its files


@dataclass(frozen=True)
class RouteLimit:
    method: str
    path: re.Pattern[str]
    max_bytes: int


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:g}MB" if n >= 1024 * 1024 else f"{n // 1024}KB"


def too_large(max_bytes: int) -> str:
    return (
        f"提交的内容过大（这里最多{_size(max_bytes)}），请删减内容或压缩文件后重试 "
        f"(request body too large: at most {_size(max_bytes)} here)"
    )


def upload_routes(state: ServerState) -> tuple[RouteLimit, ...]:
    """The routes that take files, each allowed what its own check takes."""
    from server.api.determinations import MAX_PDF_BYTES
    from server.phones.photos import CHUNK_MAX

    review = state.reviews.max_files * state.reviews.max_file_bytes + FORM_OVERHEAD
    return (
        RouteLimit("PUT", re.compile(r"/api/portal/photos/[^/]+"), CHUNK_MAX),
        RouteLimit("POST", re.compile(r"/api/portal/review"), review),
        RouteLimit("POST", re.compile(r"/api/verify"), MAX_PDF_BYTES),
    )


class BodyLimit:
    """ASGI middleware: HTTP bodies limited by ``routes`` (first match) or ``default``."""

    def __init__(self, app: ASGIApp, routes: tuple[RouteLimit, ...] = (), default: int = JSON_MAX) -> None:
        self.app = app
        self.routes = routes
        self.default = default

    def limit_for(self, method: str, path: str) -> int:
        for route in self.routes:
            if route.method == method and route.path.fullmatch(path):
                return route.max_bytes
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["method"], scope["path"])
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and int(declared) > limit:  # the HTTP server has checked it is a number
            # Answered without reading: the server closes the connection after it, unread body and all.
            refusal = JSONResponse({"detail": too_large(limit), "code": "too_large"}, status_code=413)
            await refusal(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # Raised inside the route's read; FastAPI passes an HTTPException through to the
                    # refusal handler (server/api/validation.py), which keeps these Chinese words.
                    raise HTTPException(413, too_large(limit))
            return message

        await self.app(scope, limited, send)
