"""The broker connection settings and client factory that device and server share.

MQTT 5 always: the server needs shared subscriptions, and both ends use session expiry so that a
QoS 1 message sent during a short link drop is delivered on reconnect instead of lost.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Self

import aiomqtt
from paho.mqtt.client import MQTT_ERR_SUCCESS
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from pydantic import Field, model_validator

from runtime.configfile import ConfigSection

LOOPBACK = ("127.0.0.1", "localhost", "::1")


class TlsSection(ConfigSection):
    ca_file: Path = Field(description="the fleet CA that signed the broker's certificate")
    cert_file: Path = Field(description="this client's certificate; its CN is its MQTT user name")
    key_file: Path
    crl_file: Path | None = None


class BrokerAddress(ConfigSection):
    host: str
    port: int = Field(default=8883, ge=1, le=65535)


class BrokerSection(ConfigSection):
    host: str
    port: int = Field(default=8883, ge=1, le=65535)
    others: list[BrokerAddress] = Field(
        default=[],
        description="further brokers, same TLS files: a unit fails over to them in order, a server worker "
        "connects to every one (docs/scaling.md)",
    )
    keepalive_s: int = Field(default=15, ge=5, le=600)
    session_expiry_s: int = Field(default=3600, ge=0, description="broker keeps QoS 1 messages this long offline")
    tls: TlsSection | None = Field(default=None, description="client-certificate TLS; required off loopback")

    @model_validator(mode="after")
    def _tls_off_loopback(self) -> Self:
        addresses = [(self.host, self.port)] + [(other.host, other.port) for other in self.others]
        if self.tls is None and any(host not in LOOPBACK for host, _ in addresses):
            raise ValueError(
                "消息服务器不在本机时必须配置 [broker.tls]（证书由配置站签发，docs/provisioning.md）"
                " (tls is required for a broker that is not on this machine)"
            )
        if len(set(addresses)) < len(addresses):
            raise ValueError(
                "同一个消息服务器（主机和端口）写了两次，请每个只写一次"
                " (a broker is listed twice: list each broker once)"
            )
        return self

    def each(self) -> list[BrokerSection]:
        """One section per broker, the first (``host``, ``port``) first, each with no ``others``."""
        if not self.others:
            return [self]
        first = self.model_copy(update={"others": []})
        return [first] + [first.model_copy(update={"host": o.host, "port": o.port}) for o in self.others]

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


def tls_context(tls: TlsSection) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(tls.ca_file))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    return ctx


def make_client(
    cfg: BrokerSection,
    identifier: str,
    *,
    will: aiomqtt.Will | None = None,
    clean_start: bool = False,
    max_inflight: int | None = None,
) -> aiomqtt.Client:
    """A client for ``cfg``'s broker. ``max_inflight`` widens paho's window of QoS 1 messages
    awaiting their PUBACK (20 by default); it must not exceed the broker's receive maximum."""
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = cfg.session_expiry_s
    client = aiomqtt.Client(
        cfg.host,
        cfg.port,
        identifier=identifier,
        protocol=aiomqtt.ProtocolVersion.V5,
        will=will,
        keepalive=cfg.keepalive_s,
        clean_start=clean_start,
        properties=props,
        tls_context=tls_context(cfg.tls) if cfg.tls else None,
        timeout=10,
        max_inflight_messages=max_inflight,
    )
    # A burst of reports means a burst of acks in flight; aiomqtt would log a warning for each one
    # beyond ten, which is noise, not news. paho's own in-flight window still applies.
    client.pending_calls_threshold = 1000
    return client


def publish_nowait(client: aiomqtt.Client, topic: str, payload: bytes, qos: int) -> None:
    """Hand a message to the connection without waiting for the broker's PUBACK.

    aiomqtt's ``publish`` waits for each PUBACK with an event, a task and a timer of its own, and
    scans every pending call each time: for a server answering a burst of reports that costs more
    than the answers themselves. The message is still QoS 1 on the wire, kept by paho until its
    PUBACK arrives; only a caller that must know it arrived needs ``publish``.
    """
    info = client._client.publish(topic, payload, qos)
    if info.rc != MQTT_ERR_SUCCESS:
        raise aiomqtt.MqttCodeError(info.rc, "could not publish message")
