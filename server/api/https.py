"""The console over HTTPS, served by the worker itself (``[http] tls_cert_file``): browsers told to
keep to HTTPS, and a plain-HTTP port that only sends them there.

A phone opens its camera only for a page in a secure context, so a party who typed the address
without ``https://`` must land on the HTTPS page, not on a plain one whose call button fails.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Hsts:
    """Strict-Transport-Security on every HTTP response: after one visit the browser itself turns
    an ``http://`` address for this host into ``https://``, before anything is sent in the clear.
    Plain ASGI, so that streamed responses (recordings, PDFs) pass through untouched."""

    def __init__(self, app: ASGIApp, max_age_s: int) -> None:
        self.app = app
        self.value = f"max-age={max_age_s}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["Strict-Transport-Security"] = self.value
            await send(message)

        await self.app(scope, receive, send_with_header)


def redirect_app(public_url: str) -> ASGIApp:
    """The plain-HTTP listener's whole application. The target's host comes from the configured
    public address, never from the request's Host header, so the port cannot be made to redirect
    anywhere else."""
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(public_url))

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # a socket is not redirected: refused, the page reconnects over wss
            await send({"type": "websocket.close", "code": 1008})
            return
        target = origin + scope["raw_path"].decode("latin-1")
        if scope["query_string"]:
            target += "?" + scope["query_string"].decode("latin-1")
        # 301 for what a browser fetches; 308 keeps a form's POST a POST at the new address.
        code = 301 if scope["method"] in ("GET", "HEAD") else 308
        body = f"请使用 HTTPS 访问：{target}\nUse HTTPS: {target}\n"
        await PlainTextResponse(body, status_code=code, headers={"Location": target})(scope, receive, send)

    return app
