"""Mutual TLS for the insurers' API, ended by the worker itself.

uvicorn verifies a client certificate against a CA (``ssl_cert_reqs``, ``ssl_ca_certs``) but puts
nothing of it in the ASGI scope, and a TLS-ending proxy in front would leave the worker trusting a
header. So the insurers' API gets a listener of its own that ends TLS in the worker: the handshake
requires a certificate issued by the Kuaichu CA, and the protocol below hands the SHA-256 of that
certificate to the app, where it must match the insurer's fingerprint on record. A load balancer in
front must pass TCP through (no TLS ending there).
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from server.config import InsurerApiSection

CLIENT_CERT = "client_cert_sha256"  # the key in the request's scope state (``request.state``)


class PeerCertificateProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, plus the verified peer certificate's SHA-256 in the state every
    request of the connection starts with (uvicorn copies ``app_state`` into each request's scope)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        self.app_state = {**self.app_state, CLIENT_CERT: hashlib.sha256(der).hexdigest() if der else None}


def listener_config(section: InsurerApiSection, app: Any) -> uvicorn.Config:
    """The insurers' HTTPS listener: a client certificate from the CA is required to connect at all."""
    assert section.tls_port is not None and section.tls_cert_file and section.tls_key_file
    assert section.client_ca_file is not None
    return uvicorn.Config(
        app,
        host=section.tls_host,
        port=section.tls_port,
        http=PeerCertificateProtocol,
        ssl_certfile=str(section.tls_cert_file),
        ssl_keyfile=str(section.tls_key_file),
        ssl_ca_certs=str(section.client_ca_file),
        ssl_cert_reqs=ssl.CERT_REQUIRED,
        proxy_headers=False,  # the address logged is the insurer's own connection
        log_config=None,
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=5,
    )
