"""Configuration files: a mistake is refused at start-up with the file and the key to fix.

A technician at a roadside kiosk has the error message and nothing else, so every refusal below
must name the file path and the dotted key (or, for a rule across sections, the section).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from device.config import DeviceConfig, load_device_config
from protocol.messages import DeviceKind
from runtime.configfile import ConfigError, load_config
from server.config import ServerConfig, load_server_config

DEVICE_TOML = """\
[device]
id = "car-0001"
kind = "in-car"
data_dir = "/var/lib/kuaichu"

[broker]
host = "127.0.0.1"
port = 1883

[vehicle]
plate = "云A5H821"
vin = "LSVAM4187C2184521"

[gpio]
button_pin = 17
hazard_pin = 27
led_pin = 22
"""

KIOSK_TOML = """\
[device]
id = "kiosk-kmz-017"
kind = "kiosk"
data_dir = "/var/lib/kuaichu"

[broker]
host = "mqtt.kc.example.cn"

[broker.tls]
ca_file = "/etc/kuaichu/ca.pem"
cert_file = "/etc/kuaichu/device.pem"
key_file = "/etc/kuaichu/device.key"

[site]
name = "昆明站报警亭"
lat = 25.0159
lon = 102.7217

[gpio]
pin_factory = "mock"
control_socket = "/run/kuaichu/control.sock"
"""

SERVER_TOML = """\
[server]
data_dir = "/var/lib/kuaichu-server"
worker_id = "w1"

[broker]
host = "localhost"
port = 1883

[http]
host = "127.0.0.1"
port = 8080
secure_cookies = false
"""


def _write(tmp_path: Path, text: str, name: str = "kuaichu.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


def test_a_good_in_car_config_loads(tmp_path: Path) -> None:
    cfg = load_device_config(_write(tmp_path, DEVICE_TOML))
    assert cfg.device.id == "car-0001"
    assert cfg.device.kind is DeviceKind.IN_CAR
    assert cfg.device.data_dir == Path("/var/lib/kuaichu")
    assert cfg.vehicle is not None and cfg.vehicle.plate == "云A5H821"
    assert cfg.broker.port == 1883 and cfg.broker.tls is None
    assert (cfg.gpio.button_pin, cfg.gpio.hazard_pin, cfg.gpio.pin_factory) == (17, 27, "lgpio")
    assert cfg.report.ack_timeout_s == 3.0


def test_a_good_kiosk_config_with_tls_loads(tmp_path: Path) -> None:
    cfg = load_device_config(_write(tmp_path, KIOSK_TOML))
    assert cfg.device.kind is DeviceKind.KIOSK
    assert cfg.site is not None and cfg.site.name == "昆明站报警亭"
    assert cfg.broker.tls is not None and cfg.broker.tls.ca_file == Path("/etc/kuaichu/ca.pem")
    assert cfg.broker.port == 8883
    assert cfg.gpio.control_socket == Path("/run/kuaichu/control.sock")


def test_a_good_server_config_loads(tmp_path: Path) -> None:
    cfg = load_server_config(_write(tmp_path, SERVER_TOML))
    assert cfg.server.worker_id == "w1"
    assert cfg.database_url == "sqlite+aiosqlite:////var/lib/kuaichu-server/kuaichu.db"
    assert cfg.http.port == 8080 and not cfg.http.secure_cookies
    assert cfg.server.runs == {"intake", "console", "media"}  # one worker runs everything unless told
    console = load_server_config(_write(tmp_path, _edit(SERVER_TOML, 'worker_id = "w1"', 'runs = ["console"]')))
    assert console.server.runs == {"console"}


# (id, file text, dotted key or "" for a rule across sections, words of the message)
DEVICE_MISTAKES = [
    ("unknown key", _edit(DEVICE_TOML, "button_pin = 17\n", "button_pn = 5\n"), "gpio.button_pn", "unknown key"),
    ("unknown section", DEVICE_TOML + "[camra]\nfps = 10\n", "camra", "unknown key"),
    (
        "wrong type",
        _edit(DEVICE_TOML, "button_pin = 17", 'button_pin = "seventeen"'),
        "gpio.button_pin",
        "valid integer",
    ),
    (
        "pin out of range",
        _edit(DEVICE_TOML, "button_pin = 17", "button_pin = 28"),
        "gpio.button_pin",
        "less than or equal to 27",
    ),
    ("bad plate", _edit(DEVICE_TOML, '"云A5H821"', '"YA5H821"'), "vehicle.plate", "not a plate any vehicle can carry"),
    ("bad device id", _edit(DEVICE_TOML, '"car-0001"', '"Car 1"'), "device.id", "should match pattern"),
    ("bad kind", _edit(DEVICE_TOML, '"in-car"', '"truck"'), "device.kind", "'in-car' or 'kiosk'"),
    (
        "missing section",
        _edit(DEVICE_TOML, '[broker]\nhost = "127.0.0.1"\nport = 1883\n', ""),
        "broker",
        "Field required",
    ),
    ("missing key", _edit(DEVICE_TOML, 'data_dir = "/var/lib/kuaichu"\n', ""), "device.data_dir", "Field required"),
    (
        "in-car without vehicle",
        _edit(DEVICE_TOML, '[vehicle]\nplate = "云A5H821"\nvin = "LSVAM4187C2184521"\n', ""),
        "",
        "an in-car unit needs a [vehicle] section",
    ),
    (
        "kiosk without site",
        _edit(KIOSK_TOML, '[site]\nname = "昆明站报警亭"\nlat = 25.0159\nlon = 102.7217\n', ""),
        "",
        "a kiosk needs a [site] section",
    ),
    (
        "in-car with a screen",
        DEVICE_TOML + '\n[screen]\nbackend = "browser"\n',
        "",
        "an in-car unit has no screen",
    ),
    (
        "kiosk screen of an unknown kind",
        KIOSK_TOML + '\n[screen]\nbackend = "framebuffer"\n',
        "screen.backend",
        "'none', 'browser' or 'simulated'",
    ),
    (
        "equal pins",
        _edit(DEVICE_TOML, "led_pin = 22", "led_pin = 17"),
        "gpio",
        "pins must be different",
    ),
    (
        "control socket on real pins",
        _edit(KIOSK_TOML, 'pin_factory = "mock"\n', ""),
        "gpio",
        "control_socket drives simulated pins; it needs pin_factory = 'mock'",
    ),
    (
        "broker off loopback without tls",
        _edit(DEVICE_TOML, 'host = "127.0.0.1"', 'host = "mqtt.kc.example.cn"'),
        "broker",
        "tls is required for a broker that is not on this machine",
    ),
    (
        "turn without credentials",
        DEVICE_TOML + '\n[[webrtc.ice_servers]]\nurls = ["turn:turn.kc.example.cn:3478"]\n',
        "webrtc.ice_servers.0",
        "a TURN server needs username and credential",
    ),
    (
        "ice server that is a web address",
        DEVICE_TOML + '\n[[webrtc.ice_servers]]\nurls = ["https://stun.kc.example.cn"]\n',
        "webrtc.ice_servers.0.urls.0",
        "should match pattern",
    ),
    (
        "tls without a key",
        _edit(KIOSK_TOML, 'key_file = "/etc/kuaichu/device.key"\n', ""),
        "broker.tls.key_file",
        "Field required",
    ),
]


def _refused(load: type[DeviceConfig] | type[ServerConfig], path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(load, path)
    assert caught.value.path == path
    return caught.value


def _assert_names(error: ConfigError, path: Path, key: str, words: str) -> None:
    text = str(error)
    assert text.startswith(f"{path}: "), text
    if key:
        assert f"{path}: {key}: " in text, text
        assert any(k == key and words in msg for k, msg in error.problems), error.problems
    else:
        assert f"{path}: Value error, {words}" in text, text


@pytest.mark.parametrize(
    ("text", "key", "words"), [m[1:] for m in DEVICE_MISTAKES], ids=[m[0] for m in DEVICE_MISTAKES]
)
def test_device_config_mistakes_name_file_and_key(tmp_path: Path, text: str, key: str, words: str) -> None:
    path = _write(tmp_path, text, "device.toml")
    _assert_names(_refused(DeviceConfig, path), path, key, words)


SERVER_MISTAKES = [
    ("unknown key", _edit(SERVER_TOML, "port = 8080", "prot = 8080"), "http.prot", "unknown key"),
    ("wrong type", _edit(SERVER_TOML, "port = 8080", 'port = "eighty"'), "http.port", "valid integer"),
    ("bad worker id", _edit(SERVER_TOML, 'worker_id = "w1"', 'worker_id = "Worker 1"'), "server.worker_id", "pattern"),
    (
        "missing section",
        _edit(SERVER_TOML, '[server]\ndata_dir = "/var/lib/kuaichu-server"\nworker_id = "w1"\n', ""),
        "server",
        "Field required",
    ),
    (
        "broker off loopback without tls",
        _edit(SERVER_TOML, 'host = "localhost"', 'host = "10.0.0.5"'),
        "broker",
        "tls is required",
    ),
    (
        "plain cookies off loopback",
        _edit(SERVER_TOML, 'host = "127.0.0.1"', 'host = "0.0.0.0"'),
        "",
        "http.secure_cookies may be false only on a loopback address",
    ),
    (
        "runs nothing",
        _edit(SERVER_TOML, 'worker_id = "w1"', 'worker_id = "w1"\nruns = []'),
        "server.runs",
        "至少填写一项",
    ),
    (
        "runs an unknown part",
        _edit(SERVER_TOML, 'worker_id = "w1"', 'worker_id = "w1"\nruns = ["calls"]'),
        "server.runs.0",
        "media",
    ),
    ("calls media, as before the kinds", SERVER_TOML + "[calls]\nmedia = false\n", "calls", "[server] runs"),
    (
        "one geo file",
        SERVER_TOML + '[geo]\ndistricts_file = "/etc/kuaichu/districts.geojson"\n',
        "geo",
        "give both districts_file and city_file, or neither",
    ),
]


@pytest.mark.parametrize(
    ("text", "key", "words"), [m[1:] for m in SERVER_MISTAKES], ids=[m[0] for m in SERVER_MISTAKES]
)
def test_server_config_mistakes_name_file_and_key(tmp_path: Path, text: str, key: str, words: str) -> None:
    path = _write(tmp_path, text, "server.toml")
    _assert_names(_refused(ServerConfig, path), path, key, words)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = _edit(_edit(DEVICE_TOML, "button_pin = 17", "button_pin = 99"), '"car-0001"', '"CAR"')
    error = _refused(DeviceConfig, _write(tmp_path, text))
    assert {key for key, _ in error.problems} == {"gpio.button_pin", "device.id"}


@pytest.mark.parametrize("content", [b'[device\nid = "car-0001"\n', b"[device]\nid = car-0001\n", b"\xff\xfe[x]"])
def test_invalid_toml_names_the_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "device.toml"
    path.write_bytes(content)
    error = _refused(DeviceConfig, path)
    assert str(error).startswith(f"{path}: not valid TOML"), str(error)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    error = _refused(DeviceConfig, path)
    assert str(error) == f"{path}: cannot read: No such file or directory"


def _kuaichu(*args: str) -> subprocess.CompletedProcess[str]:
    kuaichu = Path(sys.executable).with_name("kuaichu")
    return subprocess.run([str(kuaichu), *args], capture_output=True, text=True, timeout=60)


def test_cli_device_run_with_a_bad_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    path = _write(tmp_path, _edit(DEVICE_TOML, "button_pin = 17", "button_pin = 28"), "device.toml")
    done = _kuaichu("device", "run", "--config", str(path))
    assert done.returncode == 2, done.stderr
    assert f"{path}: gpio.button_pin: Input should be less than or equal to 27" in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_server_with_a_bad_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    path = _write(tmp_path, _edit(SERVER_TOML, "port = 8080", "prot = 8080"), "server.toml")
    done = _kuaichu("server", "migrate", "--config", str(path))
    assert done.returncode == 2, done.stderr
    assert f"{path}: http.prot: unknown key" in done.stderr
