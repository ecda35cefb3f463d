"""Playing a device or a console operator against a running server, over the real protocols."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiomqtt
import httpx
import websockets

from protocol.messages import Ack, Command, decode
from protocol.topics import Channel, device_topic
from runtime.mqtt import TlsSection, tls_context
from tests import pki


@asynccontextmanager
async def raw_device(
    port: int, device_id: str, commands: asyncio.Queue[Command] | None = None
) -> AsyncIterator[tuple[aiomqtt.Client, asyncio.Queue[Ack]]]:
    """An MQTT client in a device's shoes, with that device's certificate: publishes what it is told
    (the broker's ACL still applies), collects its acks and, when given a queue, its commands. One
    connection does both: the broker makes every connection with this certificate the device's own
    client id, so a second one would knock the first off."""
    acks: asyncio.Queue[Ack] = asyncio.Queue()
    async with mqtt_client(port, device_id, pki.current().device_tls(device_id)) as client:
        await client.subscribe(device_topic(device_id, Channel.ACK), qos=1)
        if commands is not None:
            await client.subscribe(device_topic(device_id, Channel.CMD), qos=1)

        async def collect() -> None:
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                if commands is not None and message.topic.matches(device_topic(device_id, Channel.CMD)):
                    commands.put_nowait(decode(Command, message.payload))
                else:
                    acks.put_nowait(decode(Ack, message.payload))

        task = asyncio.create_task(collect())
        try:
            yield client, acks
        finally:
            task.cancel()


def mqtt_client(port: int, identifier: str, tls: TlsSection) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1", port, identifier=identifier, protocol=aiomqtt.ProtocolVersion.V5, tls_context=tls_context(tls)
    )


async def publish_report(client: aiomqtt.Client, device_id: str, payload: bytes) -> None:
    await client.publish(device_topic(device_id, Channel.REPORT), payload, qos=1)


class Console:
    """A logged-in operator: the HTTP API with its session cookie, and the live WebSocket."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.AsyncClient(base_url=base_url, timeout=10)
        self.ws: Any = None
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None

    async def login(self, username: str, password: str) -> httpx.Response:
        return await self.http.post("/api/login", json={"username": username, "password": password})

    async def connect_live(self) -> dict[str, Any]:
        cookie = "; ".join(f"{k}={v}" for k, v in self.http.cookies.items())
        url = self.base_url.replace("http://", "ws://") + "/api/ws"
        self.ws = await websockets.connect(url, additional_headers={"Cookie": cookie})
        hello: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
        self._reader = asyncio.create_task(self._read())
        return hello

    async def _read(self) -> None:
        async for raw in self.ws:
            self.events.put_nowait(json.loads(raw))

    async def next_event(self, timeout: float = 10) -> dict[str, Any]:
        return await asyncio.wait_for(self.events.get(), timeout)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self.ws is not None:
            await self.ws.close()
        await self.http.aclose()


async def event(console: Console, kind: str, within_s: float = 60) -> dict[str, Any]:
    """The next event of ``kind`` on the console's feed, skipping the others."""
    async with asyncio.timeout(within_s):
        while True:
            message = await console.events.get()
            if message["type"] == kind:
                return message


async def login_from(http: httpx.AsyncClient, address: str, username: str, password: str) -> httpx.Response:
    """A login as uvicorn sees it from ``address``: it trusts X-Forwarded-For from a proxy on
    loopback, as it would from the deployment's reverse proxy."""
    return await http.post(
        "/api/login", json={"username": username, "password": password}, headers={"X-Forwarded-For": address}
    )
