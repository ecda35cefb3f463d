"""The device configuration (``device.toml``), declared once.

The firmware loads it at start-up and ``provisioning`` writes it, both through this model, so a
bundle that provisioning produced is one the device accepts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from protocol.messages import PRETRIGGER_MAX_S, DeviceId, DeviceKind, Latitude, Longitude, Plate, ShortText, Vin
from runtime.configfile import ConfigSection, load_config
from runtime.ice import IceServer
from runtime.mqtt import BrokerSection

GpioPin = Annotated[int, Field(ge=0, le=27, description="BCM GPIO number")]


class DeviceSection(ConfigSection):
    id: DeviceId
    kind: DeviceKind
    data_dir: Path = Field(description="outbox database, control socket and other device state")


class VehicleSection(ConfigSection):
    plate: Plate
    vin: Vin | None = None


class SiteSection(ConfigSection):
    name: ShortText
    lat: Latitude
    lon: Longitude
    address: ShortText | None = None


class GpioSection(ConfigSection):
    pin_factory: Literal["lgpio", "rpigpio", "native", "mock"] = Field(
        default="lgpio", description="gpiozero pin factory; 'mock' drives MockFactory pins (demo and tests)"
    )
    button_pin: GpioPin = 17
    hazard_pin: GpioPin | None = Field(default=None, description="hazard-warning switch input (in-car units, e.g. 27)")
    led_pin: GpioPin = 22
    buzzer_pin: GpioPin = 23
    long_press_s: float = Field(default=1.5, ge=0, le=10, description="hold time before a press counts")
    bounce_s: float = Field(default=0.05, ge=0, le=1)
    hazard_active_high: bool = True
    control_socket: Path | None = Field(
        default=None, description="simulation only: a Unix socket through which the demo presses the mock pins"
    )
    hazard_release_s: float = Field(
        default=3.0,
        gt=0,
        le=30,
        description="hazards count as switched off after this long with no pulse (the relay flashes ~1.5 Hz)",
    )

    @model_validator(mode="after")
    def _pins_distinct(self) -> Self:
        pins = [p for p in (self.button_pin, self.hazard_pin, self.led_pin, self.buzzer_pin) if p is not None]
        if len(pins) != len(set(pins)):
            raise ValueError("button, hazard, led and buzzer pins must be different")
        if self.control_socket is not None and self.pin_factory != "mock":
            raise ValueError("control_socket drives simulated pins; it needs pin_factory = 'mock'")
        return self


class GnssSection(ConfigSection):
    backend: Literal["serial", "simulated"] = "serial"
    port: str = Field(default="/dev/serial0", description="serial device of the receiver")
    baud: int = Field(default=9600, ge=1200, le=921600)
    silent_after_s: float = Field(default=5.0, gt=0, le=120, description="no bytes for this long = receiver silent")
    track_file: Path | None = Field(default=None, description="simulated: NMEA capture the fake receiver plays")
    max_trusted_hdop: float = Field(default=5.0, gt=0)
    min_trusted_sats: int = Field(default=4, ge=3)
    max_trusted_age_s: float = Field(default=10.0, gt=0)


class CameraSection(ConfigSection):
    backend: Literal["picamera2", "simulated"] = "picamera2"
    width: int = Field(default=640, ge=160, le=4096)
    height: int = Field(default=480, ge=120, le=3072)
    fps: int = Field(default=15, ge=1, le=60)


class AudioSection(ConfigSection):
    backend: Literal["pyaudio", "simulated"] = "pyaudio"
    sample_rate: int = Field(default=16000, ge=8000, le=48000)


class ScreenSection(ConfigSection):
    """A kiosk's touch screen (``device.hal.screen``); an in-car unit has none and guides by LED and voice."""

    backend: Literal["none", "browser", "simulated"] = Field(
        default="none",
        description="'browser': a local page that Chromium shows in kiosk mode; 'simulated': each screen "
        "written to output_dir (demo and tests); 'none': no screen",
    )
    host: str = Field(default="127.0.0.1", description="browser: the page is served here (keep it local)")
    port: int = Field(default=8088, ge=1, le=65535, description="browser: and on this port")
    output_dir: Path | None = Field(default=None, description="simulated: where screens go (default data_dir/screen)")
    portal_url: Annotated[str, Field(pattern=r"^https?://[^\s?#]{1,200}$")] | None = Field(
        default=None,
        description="the parties' page on the server (its public URL + '/p'): the case screen shows "
        "'{portal_url}?case={case_no}' as a QR code; none: the case number only",
    )
    notice_s: float = Field(
        default=600,
        gt=0,
        le=24 * 3600,
        description="'clear the road' and a determination's QR code stay on screen this long",
    )


class ReportSection(ConfigSection):
    ack_timeout_s: float = Field(default=3.0, gt=0, le=120)
    retry_max_s: float = Field(default=60.0, gt=0, description="resend interval grows from ack_timeout_s up to this")
    heartbeat_s: float = Field(default=30.0, ge=1, le=3600)
    track_s: int = Field(default=30, ge=0, le=60, description="seconds of GNSS track sent with a report")
    case_hold_s: float = Field(default=1800, gt=0, description="after this the device is ready for a new report")


class WebRtcSection(ConfigSection):
    call_on_accept: bool = Field(default=True, description="start the live call when the server accepts a report")
    ice_servers: list[IceServer] = Field(
        default_factory=list,
        max_length=8,
        description="STUN/TURN servers for the live video; none means direct connections only (same network)",
    )
    answer_timeout_s: float = Field(default=15, gt=0, le=120, description="wait this long for the server's answer")
    reconnect_after_s: float = Field(
        default=4, gt=0, le=60, description="a connection disconnected this long is renegotiated"
    )
    max_call_min: float = Field(default=60, gt=0, le=24 * 60, description="a call ends by itself after this long")
    relay_only: bool = Field(default=False, description="use TURN relay candidates only (networks that block UDP)")
    degrade_after_s: float = Field(
        default=20,
        gt=0,
        le=600,
        description="no video connection for this long: stills and sound go over MQTT until it connects",
    )
    degraded_every_s: float = Field(
        default=3, ge=1, le=6, description="while degraded: a still, and the sound since the last one, this often"
    )
    degraded_still_width: int = Field(default=320, ge=160, le=640, description="while degraded: stills this wide")


class EvidenceSection(ConfigSection):
    pretrigger_s: int = Field(
        default=10,
        ge=0,
        le=PRETRIGGER_MAX_S,
        description="seconds of video kept for the time before a press, and before a dispatcher's click during "
        "the call (the unit keeps 5 s more, LATE_REQUEST_S, so the click's request may arrive late); 0: none",
    )
    pretrigger_fps: float = Field(
        default=4, gt=0, le=30, description="frames a second kept for it (never more than the camera's own)"
    )
    still_quality: int = Field(default=90, ge=50, le=100, description="JPEG quality of the stills a dispatcher takes")
    upload_kbps: int = Field(
        default=2000,
        ge=16,
        le=100_000,
        description="stills and clips go up at most this fast (kbit/s), leaving the rest of the uplink to the call",
    )


class PlatesSection(ConfigSection):
    """The on-device plate reader (``device.evidence.plates``)."""

    enabled: bool = Field(default=True, description="read plates on the unit; off, the heartbeat says 'absent'")
    models_dir: Path | None = Field(
        default=None,
        description="the reader's detector, refiner and recogniser .tflite files (default: the models release "
        "the updater installed, else the firmware's models/)",
    )
    on_report: bool = Field(
        default=True, description="read the plates in a still taken at each press and send them after the report"
    )
    read_timeout_s: float = Field(
        default=10,
        gt=0,
        le=60,
        description="a still and its read that take longer are given up, and the dispatcher told why",
    )
    answer_wait_s: float = Field(
        default=3.0,
        ge=0,
        le=60,
        description="the still for a report's plates is taken once the server has answered the report, "
        "or after this long without an answer (the report's first resend, ack_timeout_s, by default)",
    )


class UpdateSection(ConfigSection):
    """Signed over-the-air releases (``device.update``, docs/updates.md)."""

    url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/]+(/[^\s]*)?$",
        description="the server's update repository, e.g. https://kuaichu.example.cn/updates/; none: no updates",
    )
    trusted_root: Path = Field(
        default=Path("/etc/kuaichu/root.json"), description="the release signers' root the bundle carries"
    )
    releases_dir: Path = Field(
        default=Path("/opt/kuaichu"),
        description="releases/VERSION, models/VERSION, their current links and the update state",
    )
    check_every_min: float = Field(default=360, gt=0, le=7 * 24 * 60, description="how often to look for a release")
    trial_s: float = Field(
        default=300, ge=10, le=3600, description="a new release that is not healthy within this is rolled back"
    )
    max_download_mb: float = Field(default=300, gt=0, le=4096, description="a larger target is refused")


class DeviceConfig(ConfigSection):
    device: DeviceSection
    broker: BrokerSection
    vehicle: VehicleSection | None = None
    site: SiteSection | None = None
    gpio: GpioSection = GpioSection()
    gnss: GnssSection = GnssSection()
    camera: CameraSection = CameraSection()
    audio: AudioSection = AudioSection()
    screen: ScreenSection = ScreenSection()
    report: ReportSection = ReportSection()
    webrtc: WebRtcSection = WebRtcSection()
    evidence: EvidenceSection = EvidenceSection()
    plates: PlatesSection = PlatesSection()
    update: UpdateSection = UpdateSection()

    @model_validator(mode="after")
    def _kind_has_its_place(self) -> Self:
        if self.device.kind is DeviceKind.IN_CAR and self.vehicle is None:
            raise ValueError("an in-car unit needs a [vehicle] section")
        if self.device.kind is DeviceKind.KIOSK and self.site is None:
            raise ValueError("a kiosk needs a [site] section")
        if self.device.kind is DeviceKind.IN_CAR and self.screen.backend != "none":
            raise ValueError("an in-car unit has no screen: it guides by LED and voice ([screen] backend = 'none')")
        return self


def load_device_config(path: Path) -> DeviceConfig:
    """The file's settings; a unit that takes updates and names no models folder reads plates with
    the models release the updater installed and put on trial or kept (docs/updates.md), so the
    firmware and its self-test load the models that are in use after each restart."""
    cfg = load_config(DeviceConfig, path)
    if cfg.update.url is not None and cfg.plates.models_dir is None:
        from device.update.releases import installed_models

        models = installed_models(cfg.update.releases_dir)
        if models is not None:
            cfg = cfg.model_copy(update={"plates": cfg.plates.model_copy(update={"models_dir": models})})
    return cfg
