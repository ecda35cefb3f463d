"""The SMS gateway interface and its HTTP implementation.

A provider is asked over HTTPS with a JSON POST ``{"to", "text", "ref"}`` and a bearer token; it
answers 2xx with ``{"id": ...}`` once it has taken the message, and later reports delivery to
``POST /api/sms/receipts``. What a failure means decides what the outbox does: a provider that is
down, slow or rate-limiting is tried again later; one that refuses the message itself is not.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

import httpx

logger = logging.getLogger(__name__)


class SmsError(Exception):
    def __init__(self, message: str, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class SmsGateway(Protocol):
    async def send(self, to: str, text: str, ref: str) -> str:
        """Hand one message to the provider; returns the provider's id for it."""
        ...

    async def close(self) -> None: ...


class HttpSmsGateway:
    def __init__(self, url: str, token: str, timeout_s: float) -> None:
        self._url = url
        self._timeout_s = timeout_s
        self._client = httpx.AsyncClient(timeout=timeout_s, headers={"Authorization": f"Bearer {token}"})

    async def send(self, to: str, text: str, ref: str) -> str:
        """Within ``timeout_s`` in all (httpx's own limit is per step: a provider answering a byte at
        a time could hold a send past the outbox's claim, and another worker would send it too)."""
        try:
            async with asyncio.timeout(self._timeout_s):
                response = await self._client.post(self._url, json={"to": to, "text": text, "ref": ref})
        except httpx.HTTPError as exc:
            raise SmsError(f"provider unreachable: {type(exc).__name__}", retryable=True) from None
        except TimeoutError:
            raise SmsError(f"provider did not answer within {self._timeout_s:g} s", retryable=True) from None
        if response.status_code == 429 or response.status_code >= 500:
            raise SmsError(f"provider answered {response.status_code}", retryable=True)
        if response.status_code >= 400:
            raise SmsError(f"provider refused the message: {response.status_code} {response.text[:100]}", False)
        try:
            provider_id = str(response.json()["id"])
        except (ValueError, KeyError, TypeError):
            raise SmsError("provider's answer carries no message id", retryable=True) from None
        return provider_id[:64]

    async def close(self) -> None:
        await self._client.aclose()
