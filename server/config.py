"""The server configuration (``server.toml``), declared once and validated at start-up."""

from __future__ import annotations

import os
from datetime import date
from enum import StrEnum
from ipaddress import ip_network
from pathlib import Path
from typing import Annotated, Self

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from pydantic import Field, IPvAnyNetwork, field_validator, model_validator

from runtime.configfile import ConfigSection, load_config
from runtime.ice import IceServer
from runtime.mqtt import LOOPBACK, BrokerSection


class WorkerPart(StrEnum):
    """What one server worker runs (docs/operations.md, "服务进程的分工"): each part can be scaled
    by starting more workers that run it, except the calls, which one worker holds today."""

    INTAKE = "intake"  # the units' reports, heartbeats, self-tests and plate readings over MQTT
    CONSOLE = "console"  # the console, the parties' pages and the APIs over HTTP
    MEDIA = "media"  # the live calls (aiortc), and the HTTP and WebSocket routes that reach them


class ServerSection(ConfigSection):
    data_dir: Path = Field(description="the SQLite database (by default) and other server state")
    worker_id: str = Field(default="w1", pattern=r"^[a-z0-9-]{1,16}$", description="unique per server worker")
    runs: frozenset[WorkerPart] = Field(
        default=frozenset(WorkerPart),
        description="what this worker runs: intake, console, media (one worker per deployment may run media); "
        "a worker without console still answers /healthz, /readyz and /metrics",
    )

    @field_validator("runs")
    @classmethod
    def _runs_something(cls, runs: frozenset[WorkerPart]) -> frozenset[WorkerPart]:
        if not runs:
            raise ValueError(
                '请至少填写一项，例如 runs = ["intake"]；可选 intake、console、media (a worker runs at least one part)'
            )
        return runs


class DatabaseSection(ConfigSection):
    url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL (sqlite+aiosqlite:///... or postgresql+asyncpg://...); "
        "default: SQLite in data_dir",
    )
    migrate: bool = Field(default=True, description="upgrade the schema at start-up")


class HttpSection(ConfigSection):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    session_ttl_h: float = Field(default=12, gt=0, le=24 * 7)
    secure_cookies: bool = Field(default=True, description="set false only when serving plain HTTP on loopback")
    allowed_origins: list[Annotated[str, Field(pattern=r"^https?://[^\s/]+$")]] = Field(
        default_factory=list,
        description="sites (https://host[:port]) whose pages may open the live WebSockets, besides the console's "
        "own address and public_url",
    )
    public_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
        description="the address parties reach the console at, for the determination's QR code and SMS links; "
        "default http://host:port (https:// with TLS)",
    )
    # Phones open the camera only for a page in a secure context, so the console is served over
    # HTTPS wherever parties reach it: by the worker itself with these files, or by a proxy in
    # front (server/install/nginx-kuaichu.conf) that talks plain HTTP to a worker on loopback.
    tls_cert_file: Path | None = Field(
        default=None,
        description="the console's certificate (PEM, followed by its intermediate certificates): the worker "
        "serves HTTPS itself; none: plain HTTP, on loopback or behind a TLS proxy",
    )
    tls_key_file: Path | None = Field(default=None, description="its private key (PEM, not encrypted)")
    redirect_port: int | None = Field(
        default=None, ge=0, le=65535, description="a plain-HTTP port (usually 80) that redirects to HTTPS; with TLS"
    )
    hsts_max_age_s: int = Field(
        default=365 * 24 * 3600,
        ge=0,
        le=2 * 365 * 24 * 3600,
        description="how long browsers keep to HTTPS for this host (Strict-Transport-Security); with TLS",
    )

    @property
    def tls(self) -> bool:
        return self.tls_cert_file is not None

    @model_validator(mode="after")
    def _tls_settings(self) -> Self:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file 和 tls_key_file 要么都填，要么都不填 (give both or neither)")
        if self.tls_cert_file is None or self.tls_key_file is None:
            if self.redirect_port is not None:
                raise ValueError(
                    "redirect_port 只用于 HTTPS：请同时填写 tls_cert_file 和 tls_key_file (redirect_port needs TLS)"
                )
            return self
        if not self.secure_cookies:
            raise ValueError(
                "启用 TLS 时 secure_cookies 不能为 false：请删除这一行 (cookies over HTTPS are always Secure)"
            )
        if self.public_url is not None and not self.public_url.startswith("https://"):
            raise ValueError("启用 TLS 时 public_url 必须以 https:// 开头 (public_url must be https:// with TLS)")
        if self.redirect_port is not None and self.redirect_port == self.port:
            raise ValueError("redirect_port 不能与 port 相同 (redirect_port must differ from port)")
        check_tls_pair(self.tls_cert_file, self.tls_key_file)
        return self


def _spki(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def check_tls_pair(cert_file: Path, key_file: Path) -> None:
    """Refuses at start-up, naming key and file, what would otherwise fail in every browser's
    handshake or only when uvicorn first binds."""
    try:
        certs = x509.load_pem_x509_certificates(cert_file.read_bytes())
    except OSError as exc:
        raise ValueError(f"tls_cert_file: 无法读取 {cert_file} (cannot read: {exc.strerror})") from None
    except ValueError:
        raise ValueError(f"tls_cert_file: {cert_file} 不是 PEM 格式的证书 (not a PEM certificate)") from None
    try:
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    except OSError as exc:
        raise ValueError(f"tls_key_file: 无法读取 {key_file} (cannot read: {exc.strerror})") from None
    except (ValueError, TypeError):
        raise ValueError(f"tls_key_file: {key_file} 不是未加密的 PEM 私钥 (not an unencrypted PEM key)") from None
    if _spki(key.public_key()) != _spki(certs[0].public_key()):
        raise ValueError(f"tls_key_file: {key_file} 与证书 {cert_file} 不配对 (the key does not match the certificate)")


class GeoSection(ConfigSection):
    districts_file: Path | None = Field(default=None, description="district fences, GCJ-02 GeoJSON; default: shipped")
    city_file: Path | None = Field(default=None, description="the city around them, one feature; default: shipped")

    @model_validator(mode="after")
    def _both_or_neither(self) -> Self:
        if (self.districts_file is None) != (self.city_file is None):
            raise ValueError("give both districts_file and city_file, or neither")
        return self


class DemoSection(ConfigSection):
    control_dir: Path | None = Field(
        default=None, description="folder of simulated devices' control sockets; enables the console's demo panel"
    )


class FleetSection(ConfigSection):
    offline_alert_min: float = Field(
        default=30, gt=0, le=7 * 24 * 60, description="alert on the fleet page when a device is offline this long"
    )


class CallsSection(ConfigSection):
    ice_servers: list[IceServer] = Field(
        default_factory=list, max_length=8, description="for this server and the consoles"
    )
    segment_s: float = Field(
        default=10, ge=2, le=300, description="recording segment length; a crash loses at most one"
    )
    fps: int = Field(default=15, ge=1, le=60, description="the recording's nominal frame rate")
    reconnect_grace_s: float = Field(
        default=120, gt=0, le=3600, description="a call whose device does not come back this long is ended"
    )
    max_call_min: float = Field(default=60, gt=0, le=24 * 60)

    @model_validator(mode="before")
    @classmethod
    def _media_moved(cls, data: object) -> object:
        """A configuration written before the worker kinds says where the setting went."""
        if isinstance(data, dict) and "media" in data:
            raise ValueError(
                'media 已移到 [server] runs：请删除这一行，承接通话的进程在 [server] 写 runs = ["media"] 或'
                ' runs = ["intake", "console", "media"] (moved to [server] runs)'
            )
        return data


class SmsSection(ConfigSection):
    gateway_url: str | None = Field(
        default=None,
        pattern=r"^https?://\S+$",
        description="the SMS provider's send endpoint (JSON POST); none: messages wait in the outbox",
    )
    token_file: Path | None = Field(default=None, description="file holding the bearer token for the provider")
    receipt_token_file: Path | None = Field(
        default=None, description="file holding the token the provider presents with delivery receipts"
    )
    timeout_s: float = Field(default=10, gt=0, le=120)
    retry_base_s: float = Field(default=5, gt=0, le=3600, description="first retry delay; doubles per attempt")
    retry_max_s: float = Field(default=600, gt=0, le=24 * 3600)
    max_attempts: int = Field(default=100, ge=1, le=10_000, description="then the message is marked failed")
    poll_s: float = Field(default=2, gt=0, le=60, description="how often the sender looks for due messages")

    @model_validator(mode="after")
    def _token_with_gateway(self) -> Self:
        if self.gateway_url is not None and self.token_file is None:
            raise ValueError("sms.gateway_url needs sms.token_file")
        return self


class InsurerApiSection(ConfigSection):
    """The insurers' API (docs/insurers.md): its own mutual-TLS listener, and each insurer's rate."""

    tls_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="HTTPS port for insurers with client certificates (mutual TLS), serving only the insurers' "
        "API; none: API keys only, through the console's port",
    )
    tls_host: str = Field(default="127.0.0.1", description="where that port listens")
    tls_cert_file: Path | None = Field(default=None, description="the listener's server certificate (PEM)")
    tls_key_file: Path | None = Field(default=None, description="and its private key")
    client_ca_file: Path | None = Field(default=None, description="the Kuaichu CA that issued insurers' certificates")
    rate_per_s: float = Field(default=5, gt=0, le=1000, description="an insurer's sustained calls a second, per worker")
    burst: int = Field(default=20, ge=1, le=10_000, description="calls an insurer may make at once, then the rate")

    @model_validator(mode="after")
    def _tls_files(self) -> Self:
        if self.tls_port is not None and None in (self.tls_cert_file, self.tls_key_file, self.client_ca_file):
            raise ValueError("insurer_api.tls_port needs tls_cert_file, tls_key_file and client_ca_file")
        return self


class PortalSection(ConfigSection):
    """The parties' web app: one-time codes by SMS and the sessions they open."""

    code_ttl_s: float = Field(default=300, ge=60, le=1800, description="how long an SMS code is valid")
    code_tries: int = Field(default=5, ge=1, le=10, description="wrong tries before a code is dead")
    code_interval_s: float = Field(default=60, ge=0, le=600, description="least time between two codes to one phone")
    codes_per_phone_hour: int = Field(default=5, ge=1, le=100)
    codes_per_address_hour: int = Field(default=30, ge=1, le=10_000)
    session_ttl_h: float = Field(default=72, gt=0, le=24 * 30, description="a party's session, then a new code")
    # Review (复核) deadlines count rest days (server/portal/periods.py); both lists are published a
    # year at a time by the State Council, so they are configuration, not code.
    holidays: list[date] = Field(default_factory=list, description="public holidays (rest days on weekdays)")
    working_weekends: list[date] = Field(default_factory=list, description="weekend days made working days (调休)")
    review_unit: str = Field(default="昆明市公安局交通警察支队", description="the unit above that decides reviews")
    review_file_max_mb: float = Field(default=10, gt=0, le=50, description="one attachment of a review request")
    review_files_max: int = Field(default=6, ge=1, le=20, description="attachments per review request")


class PhoneSection(ConfigSection):
    """Reports, calls and photos from the parties' phones in the web app (server/phones/)."""

    accuracy_limit_m: float = Field(
        default=200, gt=0, le=10_000, description="a browser position less precise than this is not routed: call 122"
    )
    reports_per_phone_hour: int = Field(default=3, ge=1, le=100, description="视频报警 tries per number")
    reports_per_address_hour: int = Field(default=20, ge=1, le=10_000, description="视频报警 tries per address")
    photo_max_mb: float = Field(default=15, gt=0, le=100, description="one photo a party uploads")
    photos_per_party: int = Field(default=30, ge=1, le=500, description="photos one party may upload to a case")


class InsurersSection(ConfigSection):
    """Events pushed to the insurers (docs/insurers.md): how hard the webhook outbox tries, and how
    long the links in an event stay open."""

    timeout_s: float = Field(default=10, gt=0, le=120, description="one POST to an insurer's endpoint")
    retry_first_s: float = Field(default=10, gt=0, le=3600, description="first retry delay; doubles, with jitter")
    retry_max_s: float = Field(default=3600, gt=0, le=24 * 3600, description="the longest wait between two tries")
    retry_for_h: float = Field(
        default=24, gt=0, le=24 * 30, description="keep trying this long after the event was written, then dead letter"
    )
    min_attempts: int = Field(
        default=5, ge=1, le=1000, description="tries before a dead letter, also after an operator's resend"
    )
    poll_s: float = Field(default=2, gt=0, le=60, description="how often the sender looks for due events")
    link_ttl_s: float = Field(
        default=3600, ge=60, le=7 * 24 * 3600, description="how long a document or evidence link in an event opens"
    )


class ClearingSection(ConfigSection):
    move_off_m: float = Field(
        default=30, gt=0, le=1000, description="an in-car unit this far from the scene has moved off"
    )
    move_off_s: float = Field(
        default=300, gt=0, le=3600, description="flag the case if the unit has not moved off this long after"
    )
    check_every_s: float = Field(default=2, gt=0, le=60)


class DocumentsSection(ConfigSection):
    font_cache_dir: Path | None = Field(
        default=None,
        description="where the determination's font (built once from Noto CJK) is kept; "
        "default $XDG_CACHE_HOME/kuaichu/fonts (~/.cache/kuaichu/fonts)",
    )


class UpdatesSection(ConfigSection):
    repository: Path | None = Field(
        default=None,
        description="the TUF repository `kuaichu release publish --to` writes (metadata/ and targets/), "
        "served read-only under /updates/ (docs/updates.md); none: no updates served",
    )
    no_answer_h: float = Field(
        default=24,
        gt=0,
        le=24 * 30,
        description="hours a unit told of a rollout may go without progress (offline, say) before it counts as "
        "no answer and frees its batch slot, so that the rollout goes on",
    )


class RetentionSection(ConfigSection):
    """How long a closed case's recordings, stills, clips and photos are kept (server/retention.py,
    docs/operations.md): three years by default, the limitation period of a claim for compensation
    (《民法典》第一百八十八条); never under the six months the rules on law-enforcement recordings ask."""

    media_days: int = Field(
        default=1095,
        ge=180,
        le=36_500,
        description="days after a case closes (delivered or escalated; a review or insurance claim still open "
        "holds it) that its media are kept, then deleted; determinations and the case's log are kept",
    )
    check_every_s: float = Field(default=3600, gt=0, le=24 * 3600, description="how often a worker looks")


class BackupSection(ConfigSection):
    """The nightly backup (``kuaichu server backup`` without a folder, run by
    kuaichu-server-backup.timer): best on another disk than data_dir, which it is meant to survive."""

    dir: Path | None = Field(
        default=None,
        description="where each backup gets a dated folder of its own; none: kuaichu server backup needs a folder",
    )
    keep: int = Field(
        default=14, ge=1, le=366, description="dated backups kept; older ones are deleted after a new one succeeds"
    )


# The certificates a worker's own configuration names, exported under these names by
# server/metrics.py; a watched file may not take one of them.
OWN_CERTS = frozenset({"console", "insurer_api", "insurer_client_ca", "broker_client", "broker_ca"})


class MetricsSection(ConfigSection):
    allow_from: list[IPvAnyNetwork] = Field(
        default_factory=lambda: [
            ip_network(n) for n in ("127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
        ],
        max_length=64,
        description="addresses that may read /metrics (Prometheus); behind nginx, the client's own address counts",
    )
    watch_cert_files: dict[str, Path] = Field(
        default={},
        max_length=16,
        description="more certificate files whose expiry /metrics exports, by the name the alert shows, e.g. "
        "nginx's when it ends TLS (install-server.sh --nginx-cert writes it): the worker does not serve them",
    )

    @field_validator("watch_cert_files")
    @classmethod
    def _watched_names(cls, files: dict[str, Path]) -> dict[str, Path]:
        for name in files:
            if name in OWN_CERTS:
                raise ValueError(
                    f"{name} 已是服务进程自己证书的名字，请给这个文件另取一个，如 nginx "
                    f"({name} names a certificate the worker uses itself; call this one e.g. nginx)"
                )
            if not (name.isascii() and name[:1].isalpha() and name.replace("_", "").isalnum() and len(name) <= 32):
                raise ValueError(
                    f"证书名 {name!r} 请只用英文字母、数字和下划线，以字母开头，最长 32 个字符，如 nginx "
                    "(a name of letters, digits and underscores, starting with a letter, e.g. nginx)"
                )
        return files


class ServerConfig(ConfigSection):
    server: ServerSection
    broker: BrokerSection
    database: DatabaseSection = DatabaseSection()
    http: HttpSection = HttpSection()
    geo: GeoSection = GeoSection()
    demo: DemoSection = DemoSection()
    fleet: FleetSection = FleetSection()
    calls: CallsSection = CallsSection()
    documents: DocumentsSection = DocumentsSection()
    sms: SmsSection = SmsSection()
    clearing: ClearingSection = ClearingSection()
    portal: PortalSection = PortalSection()
    phone: PhoneSection = PhoneSection()
    insurer_api: InsurerApiSection = InsurerApiSection()
    insurers: InsurersSection = InsurersSection()
    retention: RetentionSection = RetentionSection()
    backup: BackupSection = BackupSection()
    metrics: MetricsSection = MetricsSection()
    updates: UpdatesSection = UpdatesSection()

    @model_validator(mode="after")
    def _secure_cookies_off_loopback(self) -> Self:
        if not self.http.secure_cookies and self.http.host not in LOOPBACK:
            raise ValueError("http.secure_cookies may be false only on a loopback address")
        return self

    @property
    def public_url(self) -> str:
        scheme = "https" if self.http.tls else "http"
        return (self.http.public_url or f"{scheme}://{self.http.host}:{self.http.port}").rstrip("/")

    @property
    def font_cache_dir(self) -> Path:
        if self.documents.font_cache_dir is not None:
            return self.documents.font_cache_dir
        cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(cache) / "kuaichu" / "fonts"

    @property
    def documents_dir(self) -> Path:
        return self.server.data_dir / "documents"

    @property
    def evidence_dir(self) -> Path:
        return self.server.data_dir / "evidence"

    @property
    def backup_stamp(self) -> Path:
        """When the last scheduled backup succeeded, where every worker of this machine reads it
        for ``/metrics``."""
        return self.server.data_dir / "backup-last-success.json"

    @property
    def database_url(self) -> str:
        return self.database.url or f"sqlite+aiosqlite:///{self.server.data_dir / 'kuaichu.db'}"


def load_server_config(path: Path) -> ServerConfig:
    return load_config(ServerConfig, path)
