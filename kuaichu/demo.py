"""``kuaichu demo``: the whole system on one machine, with simulated hardware.

A private Mosquitto, one server worker with SQLite, a simulated in-car unit driving a recorded
GNSS track through 五华区 and a simulated kiosk at Kunming railway station, each its own process
running the real firmware over mock GPIO pins, a pseudo-terminal GNSS receiver and a rendered
camera. Demo operators are created once and their passwords kept in the demo folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from provisioning.bundle import Placement

DEFAULT_DIR = Path(".kuaichu/demo")
CITY = "530100"
DISTRICTS = ["530102", "530103", "530111", "530112", "530114"]


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    units: list[str]
    name: str
    police_no: str | None = None  # an officer's 警号, on the determinations they sign


USERS = [
    DemoUser("dispatcher", "dispatcher", [CITY, *DISTRICTS], "接警员 (all units)"),
    DemoUser("wuhua", "dispatcher", ["530102"], "五华大队接警员"),
    DemoUser("officer", "officer", [CITY, *DISTRICTS], "王警官", "012345"),
    DemoUser("admin", "admin", [], "管理员"),
]

CAR_ID = "car-demo-01"
KIOSK_ID = "kiosk-demo-01"


def free_port(preferred: int = 0) -> int:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
        except OSError:
            s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Ports:
    """The demo's local ports, free ones picked at each start."""

    broker: int  # the devices' listener
    broker_server: int  # the server workers' listener (provisioning/broker.py)
    http: int
    screen: int  # the kiosk's screen page
    sms: int  # the simulated SMS provider (kuaichu.demo_sms)


def control_socket(root: Path, device_id: str) -> Path:
    return root / "control" / f"{device_id}.sock"


def _toml_path(path: Path) -> str:
    return json.dumps(str(path))


CAR_PLATE, CAR_VIN = "云A5H821", "LSVAM4187C2184521"
KIOSK_NAME, KIOSK_LON, KIOSK_LAT = "昆明站北京路报警亭", 102.7217, 25.0159
KIOSK_ADDRESS = "官渡区北京路昆明火车站东广场"


def demo_placement(device_id: str) -> Placement:
    from protocol.messages import DeviceKind
    from provisioning.bundle import Placement

    if device_id == CAR_ID:
        return Placement(DeviceKind.IN_CAR, plate=CAR_PLATE, vin=CAR_VIN)
    return Placement(DeviceKind.KIOSK, site_name=KIOSK_NAME, lon=KIOSK_LON, lat=KIOSK_LAT)


def ensure_fleet(root: Path, broker_port: int, server_port: int) -> Path:
    """The demo's fleet PKI, made once with ``provisioning`` exactly as a real fleet's is.

    The CA passphrase of a demo is random and kept beside it (a real one never is); the broker's
    configuration is rewritten on every run because the demo picks free ports each time. A demo
    folder made before the server workers had a CA of their own is made again.
    """
    from provisioning import broker, fleet

    pki = root / "pki"
    secret = root / "pki-passphrase"
    if not secret.exists():
        secret.write_text(secrets.token_urlsafe(24))
        secret.chmod(0o600)
    passphrase = secret.read_bytes()
    user = fleet.default_broker_user()
    if not (pki / "registry.json").exists() or not fleet.Layout(pki).workers_ca_cert.exists():
        shutil.rmtree(pki, ignore_errors=True)
        fleet.init(pki, passphrase, "127.0.0.1", broker_port, user, server_port=server_port)
        for device_id in (CAR_ID, KIOSK_ID):
            fleet.add_device(pki, passphrase, device_id, demo_placement(device_id))
    layout = fleet.Layout(pki)
    broker.write_conf(layout.broker, broker_port, server_port)
    if user is not None:
        fleet.give_to(layout.broker, user)
    return pki


def _tls_table(table: str, folder: Path, cert: str, key: str) -> str:
    return (
        f"[{table}]\nca_file = {_toml_path(folder / 'ca.crt')}\n"
        f"cert_file = {_toml_path(folder / cert)}\nkey_file = {_toml_path(folder / key)}\n\n"
    )


def write_configs(root: Path, ports: Ports) -> dict[str, Path]:
    """Broker, server and device configuration files, and the SMS tokens; returns the paths by
    process name."""
    from kuaichu.demo_sms import write_tokens

    for sub in ("server", "control", "logs"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    pki = ensure_fleet(root, ports.broker, ports.broker_server)
    token, receipt_token = write_tokens(root / "sms")
    server = root / "server.toml"
    server.write_text(
        f"[server]\ndata_dir = {_toml_path(root / 'server')}\n\n"
        f'[broker]\nhost = "127.0.0.1"\nport = {ports.broker_server}\n\n'
        + _tls_table("broker.tls", pki / "server", "client.crt", "client.key")
        + f'[http]\nhost = "127.0.0.1"\nport = {ports.http}\nsecure_cookies = false\n\n'
        f'[sms]\ngateway_url = "http://127.0.0.1:{ports.sms}/send"\n'
        f"token_file = {_toml_path(token)}\nreceipt_token_file = {_toml_path(receipt_token)}\n\n"
        f"[demo]\ncontrol_dir = {_toml_path(root / 'control')}\n"
    )
    paths = {"broker": pki / "broker" / "mosquitto.conf", "server": server}

    for device_id in (CAR_ID, KIOSK_ID):
        paths[device_id] = write_device_config(root, pki, device_id, ports)
    return paths


def write_device_config(root: Path, pki: Path, device_id: str, ports: Ports) -> Path:
    """The unit's configuration as ``kuaichu provision device`` writes it, switched to simulated
    hardware and to files in the demo folder instead of ``/etc/kuaichu`` on a Pi."""
    from device.config import DeviceConfig
    from protocol.messages import DeviceKind
    from provisioning import bundle

    placement = demo_placement(device_id)
    data = bundle.device_config(device_id, placement, "127.0.0.1", ports.broker).model_dump()
    folder = root / "devices" / device_id
    certs = pki / "devices" / device_id
    data["device"]["data_dir"] = folder
    data["broker"]["tls"] = {
        "ca_file": certs / bundle.CA_NAME,
        "cert_file": certs / bundle.CERT_NAME,
        "key_file": certs / bundle.KEY_NAME,
    }
    data["gpio"].update(pin_factory="mock", control_socket=control_socket(root, device_id))
    if placement.kind is DeviceKind.KIOSK:
        data["gpio"]["long_press_s"] = 0.5  # a touch on a kiosk, not a button in a car
        data["site"]["address"] = KIOSK_ADDRESS
        # What its Chromium would show; the case's QR code leads to the demo server's parties' page.
        data["screen"].update(backend="browser", port=ports.screen, portal_url=f"http://127.0.0.1:{ports.http}/p")
    for part in ("gnss", "camera", "audio"):
        data[part]["backend"] = "simulated"
    data["report"]["heartbeat_s"] = 10
    path = folder / "device.toml"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(bundle.to_toml(DeviceConfig.model_validate(data)))
    return path


async def ensure_users(server_config: Path, logins_file: Path) -> dict[str, str]:
    """Create the demo operators on first run (later runs reuse the passwords kept beside the data)
    and load the demo registry."""
    from contextlib import AsyncExitStack

    from server.casework.registry_import import DEMO_FILES, import_file
    from server.config import load_server_config
    from server.users import Role, UserError
    from server.worker import open_state

    logins = _read_logins(logins_file)
    cfg = load_server_config(server_config)
    async with AsyncExitStack() as stack:
        state, _ = await open_state(cfg, stack)
        for path in DEMO_FILES:  # the registry the checks ask: demo drivers, vehicles, policies
            await import_file(state.cases.sessions, path)
        for user in USERS:
            if user.username in logins:
                continue
            password = secrets.token_urlsafe(9)
            try:
                await state.users.add_user(
                    user.username, password, Role(user.role), user.units, user.name, user.police_no
                )
            except UserError:
                continue  # created by an earlier run whose logins file was removed
            logins[user.username] = password
    _write_logins(logins_file, logins)
    return logins


async def register_devices(pki: Path, http_port: int, admin_password: str, logs: Path) -> None:
    """The station's registration, exactly as a fleet operator runs it (``kuaichu provision sync``),
    so that the fleet page shows the demo units as registered."""
    env = {**os.environ, "KUAICHU_SERVER_USER": "admin", "KUAICHU_SERVER_PASSWORD": admin_password}
    with (logs / "provision-sync.log").open("ab") as log:
        sync = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "kuaichu.cli",
            "provision",
            "sync",
            "--dir",
            str(pki),
            "--server-url",
            f"http://127.0.0.1:{http_port}",
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        if await sync.wait() != 0:
            raise RuntimeError(f"registering the demo devices failed; see {logs / 'provision-sync.log'}")


def _read_logins(path: Path) -> dict[str, str]:
    return dict(json.loads(path.read_text())) if path.exists() else {}


def _write_logins(path: Path, logins: dict[str, str]) -> None:
    path.write_text(json.dumps(logins, indent=2))
    path.chmod(0o600)


def _spawn(name: str, args: list[str], logs: Path) -> subprocess.Popen[bytes]:
    log = (logs / f"{name}.log").open("ab")
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)


async def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str, within_s: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while loop.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}; see its log")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{what} did not start listening on port {port} within {within_s}s")


async def _wait_socket(path: Path, proc: subprocess.Popen[bytes], what: str, within_s: float = 60) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not await asyncio.to_thread(path.exists):
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}; see its log")
        if loop.time() > deadline:
            raise RuntimeError(f"{what} did not start within {within_s}s; see its log")
        await asyncio.sleep(0.1)


async def run_demo(root: Path, http_port: int) -> int:
    """Run until Ctrl-C; ``root`` is the (absolute) demo folder."""
    from kuaichu.demo_insurer import start as start_insurers
    from kuaichu.demo_sms import DemoSms

    ports = Ports(
        broker=free_port(), broker_server=free_port(), http=free_port(http_port), screen=free_port(), sms=free_port()
    )
    paths = await asyncio.to_thread(write_configs, root, ports)  # certificates, files
    logs = root / "logs"
    sms = DemoSms(root / "sms", f"http://127.0.0.1:{ports.http}")
    sms_up = asyncio.Event()
    provider = asyncio.create_task(sms.serve(ports.sms, sms_up), name="sms")
    kuaichu = [sys.executable, "-m", "kuaichu.cli"]
    procs: list[tuple[str, subprocess.Popen[bytes]]] = []
    insurers: list[asyncio.Task[None]] = []  # the simulated insurers (kuaichu.demo_insurer)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.wait({provider, asyncio.create_task(sms_up.wait())}, return_when=asyncio.FIRST_COMPLETED)
        if provider.done():
            provider.result()  # it could not take its port: say why
        mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        broker = _spawn("mosquitto", [mosquitto, "-c", str(paths["broker"])], logs)
        procs.append(("mosquitto", broker))
        await _wait_port(ports.broker, broker, "mosquitto")
        await _wait_port(ports.broker_server, broker, "mosquitto")
        logins = await ensure_users(paths["server"], root / "logins.json")
        insurers, insurer_lines = await start_insurers(paths["server"], root, f"http://127.0.0.1:{ports.http}")
        server = _spawn("server", [*kuaichu, "server", "run", "--config", str(paths["server"])], logs)
        procs.append(("server", server))
        await _wait_port(ports.http, server, "the server")
        await register_devices(root / "pki", ports.http, logins["admin"], logs)
        for device_id in (CAR_ID, KIOSK_ID):
            args = [*kuaichu, "device", "run", "--config", str(paths[device_id])]
            procs.append((device_id, _spawn(device_id, args, logs)))
        # The banner tells people to press: the devices must be able to take it when it shows.
        for name, proc in procs[2:]:
            await _wait_socket(control_socket(root, name), proc, name)
        _banner(ports, logins, root, insurer_lines)
        while not stop.is_set():
            for name, proc in procs:
                if proc.poll() is not None:
                    print(f"kuaichu demo: {name} exited with code {proc.returncode}; see {logs / name}.log")
                    stop.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
    finally:
        for _name, proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
            try:
                await asyncio.to_thread(proc.wait, 10)
            except subprocess.TimeoutExpired:
                proc.kill()
        provider.cancel()
        for insurer in insurers:
            insurer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await provider
        print("kuaichu demo: stopped")
    return 0


def _banner(ports: Ports, logins: dict[str, str], root: Path, insurers: list[str]) -> None:
    users = {u.username: u for u in USERS}
    print("\nKuaichu demo is running. Ctrl-C stops everything.\n")
    print(f"  Console   http://127.0.0.1:{ports.http}/console")
    for username, password in logins.items():
        user = users.get(username)
        print(f"            {username:<11} {password:<14} {user.name if user else ''}")
    print(f"  Devices   {CAR_ID}: in-car unit 云A5H821 driving around 翠湖 (五华区)")
    print(f"            {KIOSK_ID}: roadside kiosk at 昆明站 (官渡区), its screen http://127.0.0.1:{ports.screen}/")
    print(f"  Press     kuaichu demo press {CAR_ID}     (or the console's demo panel)")
    print(f"  Parties   http://127.0.0.1:{ports.http}/p  (their page: the link and the code come by SMS)")
    print(f"  SMS       simulated provider; the parties' messages land in {root / 'sms' / 'inbox.jsonl'}")
    print("  Insurers  simulated, each its own page (events signed ✔/✘, claims to work through):")
    for line in insurers:
        print(f"            {line}")
    print(f"  Broker    127.0.0.1:{ports.broker} (mutual TLS, per-device ACL; fleet PKI in {root / 'pki'})")
    print(f"  Logs      {root / 'logs'}\n", flush=True)


async def press(root: Path, device_id: str, hazard: bool) -> int:
    """Press a simulated device's button and report the case it opens, as the console shows it."""
    import httpx

    from device.sim.control import send_control
    from server.config import load_server_config

    sock = control_socket(root, device_id)
    if not await asyncio.to_thread(sock.exists):
        print(f"kuaichu demo press: no simulated device {device_id!r} running in {root}", file=sys.stderr)
        return 1
    cfg = load_server_config(root / "server.toml")
    logins = await asyncio.to_thread(_read_logins, root / "logins.json")
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{cfg.http.port}", timeout=10) as console:
        await console.post("/api/login", json={"username": "admin", "password": logins["admin"]})

        async def device_cases() -> dict[int, dict[str, object]]:
            cases = (await console.get("/api/cases")).json()
            return {c["id"]: c for c in cases if c["device_id"] == device_id}

        before = await device_cases()
        command: dict[str, object] = {"cmd": "hazard", "on": True} if hazard else {"cmd": "press"}
        reply = await send_control(sock, command)
        if not reply.get("ok"):
            print(f"kuaichu demo press: {reply.get('error')}", file=sys.stderr)
            return 1
        print(f"{device_id}: {'hazard lights on' if hazard else 'button held'}; waiting for the case…", flush=True)
        for _ in range(75):
            new = [c for case_id, c in (await device_cases()).items() if case_id not in before]
            if new:
                case = new[0]
                unit = case["unit"]
                assert isinstance(unit, dict)
                flag = f"  ⚠ {case['flag']}" if case["flag"] else ""
                print(f"case {case['case_no']} opened for {unit['name']}{flag}")
                return 0
            await asyncio.sleep(0.2)
    print("no new case within 15 s: a case may already be open on that device; see its log in", root / "logs")
    return 1
