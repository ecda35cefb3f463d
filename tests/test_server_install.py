"""The central server's install path: ``server/install/install-server.sh`` run into an OS image's root
with the folder ``kuaichu provision init`` made, its systemd unit checked by ``systemd-analyze
verify``, the broker configuration it writes run by Mosquitto, and its database step run against a
real PostgreSQL.

As for the Pi installer (tests/test_pi_install.py), the script runs for real into the image
(``useradd --root``, file modes, ``systemctl --root enable``); apt, pip and the database, which act
on the running system, are skipped there with the flags an image builder uses.
"""

from __future__ import annotations

import asyncio
import glob
import grp
import os
import re
import shutil
import ssl
import stat
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from ipaddress import ip_network
from pathlib import Path

import httpx
import pytest

from protocol.messages import Ack, Trigger, decode, encode
from protocol.topics import Channel, device_topic
from runtime.mqtt import TlsSection
from server.cases import now_utc
from server.config import ServerConfig, WorkerPart, load_server_config
from server.metrics import watched_expiry
from tests.commands import provision
from tests.configs import WebCert, web_cert
from tests.conftest import start_server
from tests.images import entry, snapshot, unit_directives, verify_unit
from tests.metrics_text import RULES, promtool
from tests.reports import in_car_report
from tests.services import Mosquitto, free_port
from tests.wire import mqtt_client, publish_report

INSTALL = Path(__file__).resolve().parents[1] / "server" / "install"
SCRIPT = INSTALL / "install-server.sh"
UNIT = INSTALL / "kuaichu-server@.service"
BACKUP_UNITS = [INSTALL / "kuaichu-server-backup.service", INSTALL / "kuaichu-server-backup.timer"]
PUBLIC = "https://kuaichu.example.cn"
BROKER_FILES = ["acl", "ca.crt", "crl.pem", "server.crt", "server.key", "workers-ca.crt"]


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The provisioning folder, made by the operator's command."""
    root = tmp_path_factory.mktemp("station") / "pki"
    done = provision("init", "--dir", str(root), "--broker-host", "mqtt.kuaichu.example.cn", "--broker-user", "")
    assert done.returncode == 0, done.stderr
    return root


@pytest.fixture
def image() -> Iterator[Path]:
    """A Debian 12 root as far as the installer reads it, with Debian's mosquitto group (the host's
    own id, so that the host's Mosquitto can read what is installed for it). Under a folder others
    may pass through, as Mosquitto reads its files after dropping to its own user."""
    outer = Path(tempfile.mkdtemp(prefix="kc-image-"))
    outer.chmod(0o711)
    root = outer / "image"
    etc = root / "etc"
    etc.mkdir(parents=True)
    (etc / "os-release").write_text(
        'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\nID=debian\n'
    )
    broker_gid = grp.getgrnam("mosquitto").gr_gid
    (etc / "passwd").write_text(f"root:x:0:0:root:/root:/bin/bash\nmosquitto:x:105:{broker_gid}::/:/usr/sbin/nologin\n")
    (etc / "group").write_text(f"root:x:0:\nmosquitto:x:{broker_gid}:\n")
    (etc / "shadow").write_text("root:*:19000:0:99999:7:::\nmosquitto:!:19000::::::\n")
    (etc / "gshadow").write_text("root:*::\nmosquitto:!::\n")
    for name in ("shadow", "gshadow"):
        (etc / name).chmod(0o640)
    yield root
    shutil.rmtree(outer)


@pytest.fixture
def console_cert(tmp_path: Path) -> WebCert:
    return web_cert(tmp_path / "web", "kuaichu.example.cn", "127.0.0.1")


def install(root: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    skips = ["--skip-apt", "--skip-venv", "--skip-db"]
    return subprocess.run(
        ["bash", str(SCRIPT), "--root", str(root), *skips, *flags], capture_output=True, text=True, timeout=60
    )


def load_in(image: Path, name: str) -> ServerConfig:
    """An installed worker configuration as the worker would load it, its /etc paths read from the image."""
    text = (image / "etc" / "kuaichu" / "server" / f"{name}.toml").read_text()
    copy = image.parent / f"{name}.toml"
    copy.write_text(text.replace('"/etc/kuaichu/', f'"{image}/etc/kuaichu/'))
    return load_server_config(copy)


def mode_owner(path: Path) -> tuple[int, int, int]:
    info = path.lstat()
    return stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid


def test_the_unit_passes_systemd_analyze_verify_hardened_and_restarting(tmp_path: Path) -> None:
    directives = unit_directives(UNIT.read_text())
    assert directives["Service.Restart"] == ["on-failure"]
    assert directives["Service.RestartPreventExitStatus"] == ["2"]  # a refused configuration
    assert directives["Service.User"] == directives["Service.Group"] == ["kuaichu"]
    assert directives["Service.StandardOutput"] == directives["Service.StandardError"] == ["journal"]
    for key in ("NoNewPrivileges", "PrivateTmp", "PrivateDevices", "ProtectHome", "ProtectKernelModules"):
        assert directives[f"Service.{key}"] == ["yes"], key
    assert directives["Service.ProtectSystem"] == ["strict"]
    assert directives["Service.ReadWritePaths"] == ["/var/lib/kuaichu-server /var/cache/kuaichu-server"]
    assert directives["Service.CapabilityBoundingSet"] == ["CAP_NET_BIND_SERVICE"]  # 443 and 80, nothing more
    [exec_start] = directives["Service.ExecStart"]
    binary, *args = exec_start.split()
    assert binary == "/opt/kuaichu/venv/bin/kuaichu"
    assert args == ["server", "run", "--config", "/etc/kuaichu/server/%i.toml"]

    # An instance of the template, as systemd would load kuaichu-server@main.
    copy = tmp_path / "kuaichu-server@main.service"
    done = verify_unit(UNIT.read_text(), binary, copy)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")

    # The check can fail: a misspelt directive is reported.
    done = verify_unit(copy.read_text().replace("ProtectSystem=", "ProtectSystems="), binary, copy)
    assert "Unknown key 'ProtectSystems'" in done.stderr


def test_the_nightly_backup_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    service, timer = (unit_directives(unit.read_text()) for unit in BACKUP_UNITS)
    assert service["Service.Type"] == ["oneshot"]
    assert service["Service.User"] == service["Service.Group"] == ["kuaichu"]  # pg_dump by peer authentication
    for key in ("NoNewPrivileges", "PrivateTmp", "PrivateDevices", "ProtectHome", "ProtectKernelModules"):
        assert service[f"Service.{key}"] == ["yes"], key
    assert service["Service.ProtectSystem"] == ["strict"]
    assert service["Service.ReadWritePaths"] == ["/var/lib/kuaichu-server -/var/backups/kuaichu-server"]
    assert service["Service.CapabilityBoundingSet"] == [""]
    [exec_start] = service["Service.ExecStart"]
    binary, *args = exec_start.split()
    assert binary == "/opt/kuaichu/venv/bin/kuaichu"
    assert args == ["server", "backup", "--config", "/etc/kuaichu/server.toml"]
    assert timer["Timer.OnCalendar"] == ["*-*-* 02:30:00 Asia/Shanghai"]
    assert timer["Timer.Persistent"] == ["true"] and timer["Install.WantedBy"] == ["timers.target"]

    # The timer beside the service it starts, as systemd loads them.
    done = verify_unit(BACKUP_UNITS[0].read_text(), binary, tmp_path / BACKUP_UNITS[0].name)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")
    shutil.copy(BACKUP_UNITS[1], tmp_path)
    verify = ["systemd-analyze", "verify", str(tmp_path / BACKUP_UNITS[1].name)]
    done = subprocess.run(verify, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")
    (tmp_path / BACKUP_UNITS[1].name).write_text(BACKUP_UNITS[1].read_text().replace("02:30:00", "26:30:00"))
    done = subprocess.run(verify, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "Failed to parse calendar" in done.stderr


def test_install_schedules_the_backup_and_hands_prometheus_its_rules(
    station: Path, image: Path, console_cert: WebCert
) -> None:
    """With Debian's Prometheus in the image: its rules, and a scrape job for every worker that
    promtool accepts; the backup into another folder, the timer enabled."""
    (image / "etc" / "prometheus").mkdir()
    flags = ["--pki", str(station), "--public-url", PUBLIC, "--intake-workers", "1"]
    flags += ["--tls-cert", str(console_cert.cert), "--tls-key", str(console_cert.key)]
    done = install(image, *flags, "--backup-dir", "/srv/backups", "--backup-keep", "7")
    assert done.returncode == 0, done.stderr
    user = entry(image, "passwd", "kuaichu")

    units = image / "etc" / "systemd" / "system"
    for unit in BACKUP_UNITS:
        assert (units / unit.name).read_bytes() == unit.read_bytes()
    timer = units / "timers.target.wants" / "kuaichu-server-backup.timer"
    assert os.readlink(timer) == "/etc/systemd/system/kuaichu-server-backup.timer"
    dropin = units / "kuaichu-server-backup.service.d" / "backup-dir.conf"
    assert unit_directives(dropin.read_text()) == {"Service.ReadWritePaths": ["/srv/backups"]}
    assert mode_owner(image / "srv" / "backups") == (0o750, int(user[2]), int(user[3]))
    main, intake = load_in(image, "main"), load_in(image, "intake-1")
    assert (main.backup.dir, main.backup.keep, intake.backup.dir) == (Path("/srv/backups"), 7, None)

    prometheus = image / "etc" / "prometheus"
    assert (prometheus / "rules" / "kuaichu.yml").read_bytes() == RULES.read_bytes()
    scrape = (prometheus / "kuaichu-scrape.yml").read_text()
    assert f'- targets: ["127.0.0.1:{intake.http.port}"]' in scrape
    assert '- targets: ["127.0.0.1:443"]' in scrape and "server_name: kuaichu.example.cn" in scrape
    merged = image.parent / "prometheus.yml"
    merged.write_text(scrape.replace("/etc/prometheus/", f"{prometheus}/"))
    checked = promtool("check", "config", str(merged))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 1 rule files found" in checked.stdout

    # Back to the default folder: the drop-in goes. A number of backups out of range is refused.
    assert install(image, *flags).returncode == 0
    assert not dropin.parent.exists()
    assert mode_owner(image / "var" / "backups" / "kuaichu-server")[1:] == (int(user[2]), int(user[3]))
    message = refused(image, *flags, "--backup-keep", "0")
    assert "--backup-keep is a number from 1 to 366" in message.splitlines()[-1]


def test_install_into_an_image_with_https_and_an_intake_worker(
    station: Path, image: Path, console_cert: WebCert
) -> None:
    flags = ["--pki", str(station), "--public-url", PUBLIC, "--intake-workers", "1"]
    tls = ["--tls-cert", str(console_cert.cert), "--tls-key", str(console_cert.key)]
    done = install(image, *flags, *tls)
    assert done.returncode == 0, done.stderr
    assert "kuaichu server add-user admin --role admin" in done.stdout

    user = entry(image, "passwd", "kuaichu")
    uid, gid = int(user[2]), int(user[3])
    assert uid < 1000 and user[5:] == ["/var/lib/kuaichu-server", "/usr/sbin/nologin"]
    broker_gid = grp.getgrnam("mosquitto").gr_gid

    # The broker's files from the station, for mosquitto's eyes only, and its configuration.
    broker = image / "etc" / "mosquitto" / "kuaichu"
    assert mode_owner(broker) == (0o750, 0, broker_gid)
    assert sorted(p.name for p in broker.iterdir()) == BROKER_FILES
    for name in BROKER_FILES:
        assert mode_owner(broker / name) == (0o640, 0, broker_gid), name
        assert (broker / name).read_bytes() == (station / "broker" / name).read_bytes()
    conf = (image / "etc" / "mosquitto" / "conf.d" / "kuaichu.conf").read_text()
    for key, name in [("acl_file", "acl"), ("cafile", "ca.crt"), ("certfile", "server.crt"), ("crlfile", "crl.pem")]:
        assert f"\n{key} /etc/mosquitto/kuaichu/{name}\n" in conf
    assert "\nlistener 8883\n" in conf and "\nrequire_certificate true\n" in conf and "log_dest" not in conf

    # The workers' files: the MQTT identity and the console's certificate, group kuaichu only.
    etc = image / "etc" / "kuaichu"
    assert mode_owner(etc) == (0o750, 0, gid)
    for path, source in [
        (etc / "pki" / "client.key", station / "server" / "client.key"),
        (etc / "pki" / "client.crt", station / "server" / "client.crt"),
        (etc / "tls" / "console.crt", console_cert.cert),
        (etc / "tls" / "console.key", console_cert.key),
        (etc / "server" / "main.toml", None),
        (etc / "server" / "intake-1.toml", None),
    ]:
        assert mode_owner(path) == (0o640, 0, gid), path
        assert source is None or path.read_bytes() == source.read_bytes()
    assert mode_owner(image / "var" / "lib" / "kuaichu-server") == (0o750, uid, gid)
    assert os.readlink(etc / "server.toml") == "server/main.toml"

    # Each configuration is one the worker accepts (the certificate and key checked as at start-up):
    # with no proxy in front, the worker on 443 serves the console and the calls.
    main, intake = load_in(image, "main"), load_in(image, "intake-1")
    assert (main.server.worker_id, main.server.runs) == ("main", frozenset({WorkerPart.CONSOLE, WorkerPart.MEDIA}))
    assert (intake.server.worker_id, intake.server.runs) == ("intake-1", frozenset({WorkerPart.INTAKE}))
    assert (main.http.host, main.http.port, main.http.redirect_port, main.http.tls) == ("0.0.0.0", 443, 80, True)
    assert main.public_url == intake.public_url == PUBLIC
    assert (intake.http.host, intake.http.port, intake.http.tls) == ("127.0.0.1", 8091, False)
    for cfg in (main, intake):
        assert cfg.database_url == "postgresql+asyncpg://kuaichu@/kuaichu?host=/run/postgresql"
        assert not cfg.database.migrate
        assert (cfg.broker.host, cfg.broker.port) == ("127.0.0.1", 8884)  # the server workers' listener

    # The units, enabled, and `kuaichu` on the PATH pointing where ExecStart does.
    units = image / "etc" / "systemd" / "system"
    assert (units / UNIT.name).read_bytes() == UNIT.read_bytes()
    for worker in ("main", "intake-1"):
        link = units / "multi-user.target.wants" / f"kuaichu-server@{worker}.service"
        assert os.readlink(link) == f"/etc/systemd/system/{UNIT.name}"
    assert os.readlink(image / "usr" / "local" / "bin" / "kuaichu") == "/opt/kuaichu/venv/bin/kuaichu"

    # Again: nothing changes, and an edited worker configuration is kept.
    main_toml = etc / "server" / "main.toml"
    main_toml.write_text(main_toml.read_text() + "\n[calls]\nsegment_s = 20\n")
    before = snapshot(image)
    again = install(image, *flags, *tls)
    assert again.returncode == 0, again.stderr
    assert "creating system user" not in again.stdout and "keeping /etc/kuaichu/server/main.toml" in again.stdout
    assert snapshot(image) == before


def test_without_a_certificate_each_kind_of_worker_waits_for_nginx_on_loopback(station: Path, image: Path) -> None:
    flags = ["--pki", str(station), "--public-url", PUBLIC, "--console-workers", "2", "--intake-workers", "2"]
    (image / "etc" / "prometheus").mkdir()
    done = install(image, *flags)
    assert done.returncode == 0, done.stderr
    workers = image / "etc" / "kuaichu" / "server"
    names = ["console-1", "console-2", "intake-1", "intake-2", "media"]
    assert sorted(p.name for p in workers.iterdir()) == [f"{name}.toml" for name in names]
    assert not (image / "etc" / "kuaichu" / "tls").exists()
    # The ports the shipped nginx site names (8080 for the first console, 8090 for the media worker).
    expected = {
        "console-1": (frozenset({WorkerPart.CONSOLE}), 8080),
        "console-2": (frozenset({WorkerPart.CONSOLE}), 8081),
        "media": (frozenset({WorkerPart.MEDIA}), 8090),
        "intake-1": (frozenset({WorkerPart.INTAKE}), 8091),
        "intake-2": (frozenset({WorkerPart.INTAKE}), 8092),
    }
    for name, (runs, port) in expected.items():
        cfg = load_in(image, name)
        assert (cfg.server.worker_id, cfg.server.runs, cfg.http.port) == (name, runs, port)
        # The nightly backup reads the configuration /etc/kuaichu/server.toml names.
        assert cfg.backup.dir == (Path("/var/backups/kuaichu-server") if name == "console-1" else None), name
        assert (cfg.http.host, cfg.http.tls, cfg.http.secure_cookies, cfg.public_url) == (
            "127.0.0.1",
            False,
            True,
            PUBLIC,
        )
        link = image / "etc" / "systemd" / "system" / "multi-user.target.wants" / f"kuaichu-server@{name}.service"
        assert os.readlink(link) == f"/etc/systemd/system/{UNIT.name}"
    site = (INSTALL / "nginx-kuaichu.conf").read_text()
    assert "server 127.0.0.1:8080;" in site and "server 127.0.0.1:8090;" in site
    assert os.readlink(image / "etc" / "kuaichu" / "server.toml") == "server/console-1.toml"
    # Prometheus scrapes every worker on its loopback port, under the one job the rules read.
    scrape = (image / "etc" / "prometheus" / "kuaichu-scrape.yml").read_text()
    targets = ", ".join(f'"127.0.0.1:{port}"' for port in (8090, 8080, 8081, 8091, 8092))
    assert f"  - job_name: kuaichu\n    static_configs:\n      - targets: [{targets}]\n" in scrape
    assert "https" not in scrape

    # Serving HTTPS from a worker now would leave these workers out of reach: refused, nothing changed.
    tls = ["--tls-cert", str(station / "broker" / "server.crt"), "--tls-key", str(station / "broker" / "server.key")]
    said = refused(image, "--pki", str(station), "--public-url", PUBLIC, *tls)
    assert "/etc/kuaichu/server/media.toml is from an install behind nginx" in said.splitlines()[-1], said


def test_a_run_over_an_older_install_adds_what_the_first_console_lacks_and_keeps_every_edit(
    station: Path, image: Path, tmp_path: Path
) -> None:
    """An install from before the nightly backup has no [backup] (the backup then refuses to run);
    --nginx-cert has the first console watch nginx's certificate. A run adds both where missing, in
    a file the operator edited, and touches nothing else."""
    nginx = web_cert(tmp_path / "nginx", "kuaichu.example.cn", days=30)
    (image / "etc" / "ssl").mkdir()
    shutil.copy(nginx.cert, image / "etc" / "ssl" / "kuaichu.pem")
    flags = ["--pki", str(station), "--public-url", PUBLIC, "--nginx-cert", "/etc/ssl/kuaichu.pem"]
    assert install(image, *flags).returncode == 0
    fresh = load_in(image, "console-1")
    assert fresh.metrics.watch_cert_files == {"nginx": Path("/etc/ssl/kuaichu.pem")}
    assert watched_expiry({"nginx": image / "etc" / "ssl" / "kuaichu.pem"})["nginx"] > now_utc().timestamp()

    # The first console as an older installer left it, then edited: [metrics] of its own, no [backup].
    console = image / "etc" / "kuaichu" / "server" / "console-1.toml"
    older = console.read_text().split("\n[backup]\n")[0] + '\n[metrics]\nallow_from = ["10.8.0.0/16"]\n'
    older += "\n[calls]\nsegment_s = 20"  # no newline at the end, as an editor may leave it
    console.write_text(older)
    others = {p: p.read_bytes() for p in console.parent.iterdir() if p != console}
    again = install(image, *flags, "--backup-keep", "5")
    assert again.returncode == 0, again.stderr
    assert "added to /etc/kuaichu/server/console-1.toml" in again.stdout
    # Every byte the operator had: the watched file under their [metrics], [backup] after the rest.
    watch = '[metrics]\nwatch_cert_files = { nginx = "/etc/ssl/kuaichu.pem" }\n'
    assert console.read_text().startswith(older.replace("[metrics]\n", watch) + "\n[backup]\n")
    cfg = load_in(image, "console-1")
    assert (cfg.backup.dir, cfg.backup.keep) == (Path("/var/backups/kuaichu-server"), 5)
    assert cfg.metrics.watch_cert_files == {"nginx": Path("/etc/ssl/kuaichu.pem")}
    assert cfg.metrics.allow_from == [ip_network("10.8.0.0/16")] and cfg.calls.segment_s == 20
    assert {p: p.read_bytes() for p in console.parent.iterdir() if p != console} == others
    # Once up to date, a run changes nothing.
    before = snapshot(image)
    assert "keeping /etc/kuaichu/server/console-1.toml" in install(image, *flags, "--backup-keep", "5").stdout
    assert snapshot(image) == before

    tls = ["--tls-cert", str(nginx.cert), "--tls-key", str(nginx.key)]
    said = refused(image, *flags, *tls).splitlines()[-1]
    assert "--nginx-cert is for an install behind nginx" in said
    said = refused(image, *flags[:-1], "/etc/ssl/missing.pem").splitlines()[-1]
    assert "is not a PEM certificate" in said and "ssl_certificate" in said


def worker_config_in(image: Path, name: str, data_dir: Path, broker_port: int) -> ServerConfig:
    """An installed worker's configuration run here: its /etc files read from the image, its data in
    ``data_dir`` (SQLite there, for want of the machine's PostgreSQL), the test's broker, free ports."""
    text = (image / "etc" / "kuaichu" / "server" / f"{name}.toml").read_text()
    edits = {
        '"/etc/kuaichu/': f'"{image}/etc/kuaichu/',
        '"/var/lib/kuaichu-server"': f'"{data_dir}"',
        'url = "postgresql+asyncpg://kuaichu@/kuaichu?host=/run/postgresql"': f'url = "sqlite+aiosqlite:///{data_dir}/k.db"',
        "migrate = false": "migrate = true",
        "port = 8884": f"port = {broker_port}",
    }
    for old, new in edits.items():
        assert old in text, old
        text = text.replace(old, new)
    # The HTTP ports as installed (443 and 80, or 8080 and on), free ones here.
    text = re.sub(
        r"^(redirect_)?port = (443|80|80\d\d)$", lambda m: f"{m[1] or ''}port = {free_port()}", text, flags=re.M
    )
    copy = image.parent / f"{name}.run.toml"
    copy.write_text(text)
    return load_server_config(copy)


async def test_a_unit_from_the_station_reports_to_the_installed_server(
    station: Path, image: Path, console_cert: WebCert, tmp_path: Path
) -> None:
    """The first test report, end to end: Debian's Mosquitto runs the conf.d file as written (paths
    read from the image, a free port), the main and intake workers run their installed
    configurations with the installed client certificate and console certificate, and a unit
    provisioned on the same station sends a self-test's report, which is acknowledged as a test."""
    tls_flags = ["--tls-cert", str(console_cert.cert), "--tls-key", str(console_cert.key)]
    assert install(image, "--pki", str(station), "--public-url", PUBLIC, *tls_flags).returncode == 0
    device = ["--kind", "in-car", "--plate", "云A5H821", "--vin", "LSVAU2180N2183294", "--dir", str(station)]
    made = provision("device", "car-first-01", *device)
    assert made.returncode == 0, made.stderr

    conf = (image / "etc" / "mosquitto" / "conf.d" / "kuaichu.conf").read_text()
    port, server_port = free_port(), free_port()
    conf = conf.replace("/etc/mosquitto/", f"{image}/etc/mosquitto/").replace("listener 8883", f"listener {port}")
    conf = conf.replace("listener 8884", f"listener {server_port}")
    (image / "etc" / "mosquitto" / "test.conf").write_text(conf)
    broker = Mosquitto(port, image / "etc" / "mosquitto" / "test.conf", tmp_path / "mosquitto.log", server_port)
    await asyncio.to_thread(broker.start)
    try:
        server = await start_server(worker_config_in(image, "main", tmp_path / "data", server_port))
        workers = [server]
        try:
            workers.append(await start_server(worker_config_in(image, "intake-1", tmp_path / "data", server_port)))
            bundle = station / "devices" / "car-first-01"
            unit = TlsSection(
                ca_file=bundle / "ca.crt", cert_file=bundle / "device.crt", key_file=bundle / "device.key"
            )
            async with mqtt_client(port, "car-first-01", unit) as client:
                await client.subscribe(device_topic("car-first-01", Channel.ACK), qos=1)
                report = in_car_report("car-first-01", trigger=Trigger.TEST)
                await publish_report(client, "car-first-01", encode(report))
                async with asyncio.timeout(15):
                    message = await anext(aiter(client.messages))
            assert isinstance(message.payload, bytes)
            ack = decode(Ack, message.payload)
            assert (ack.report_id, ack.status, ack.test, ack.case_no) == (report.report_id, "accepted", True, None)

            # The console answers over HTTPS with the installed certificate.
            ca = ssl.create_default_context(cafile=str(console_cert.ca))
            async with httpx.AsyncClient(verify=ca) as https:
                page = await https.get(f"https://127.0.0.1:{server.cfg.http.port}/login")
            assert page.status_code == 200 and page.headers["strict-transport-security"]
        finally:
            for worker in workers:
                await worker.stop()
    finally:
        await asyncio.to_thread(broker.stop)


def refused(image: Path, *flags: str) -> str:
    before = snapshot(image)
    done = install(image, *flags)
    assert done.returncode == 1, (flags, done.stdout)
    assert snapshot(image) == before, flags
    return done.stderr


def test_bad_inputs_are_refused_by_name_and_change_nothing(
    station: Path, image: Path, console_cert: WebCert, tmp_path: Path
) -> None:
    other = web_cert(tmp_path / "other", "kuaichu.example.cn")
    pki = ["--pki", str(station)]
    tls = ["--tls-cert", str(console_cert.cert), "--tls-key", str(console_cert.key)]
    half = tmp_path / "half"
    shutil.copytree(station / "broker", half / "broker")
    cases: dict[str, tuple[list[str], str]] = {
        "no folder": (["--public-url", PUBLIC], "which provisioning folder?"),
        "plain address": ([*pki, "--public-url", "http://kuaichu.example.cn"], "--public-url must be https://"),
        "no worker certificate": (["--pki", str(half), "--public-url", PUBLIC], "server/ca.crt is missing"),
        "key of another certificate": (
            [*pki, "--public-url", PUBLIC, "--tls-cert", str(console_cert.cert), "--tls-key", str(other.key)],
            f"--tls-cert/--tls-key: {other.key} does not belong to {console_cert.cert}",
        ),
        "certificate without key": (
            [*pki, "--public-url", PUBLIC, "--tls-cert", str(console_cert.cert)],
            "give both --tls-cert and --tls-key",
        ),
        "too many workers": ([*pki, "--public-url", PUBLIC, "--intake-workers", "12"], "a number from 1 to 9"),
        "nobody to take reports": ([*pki, "--public-url", PUBLIC, "--intake-workers", "0"], "a number from 1 to 9"),
        "consoles without nginx": (
            [*pki, "--public-url", PUBLIC, "--console-workers", "2", *tls],
            "--console-workers needs nginx in front",
        ),
    }
    for case, (flags, words) in cases.items():
        message = refused(image, *flags)
        last = message.splitlines()[-1]  # after the usage text, where the mistake was in the options
        assert last.startswith("install-server.sh: ") and words in last, (case, message)

    # Into an image without skipping what acts on the running system; and onto the wrong release.
    done = subprocess.run(
        ["bash", str(SCRIPT), "--root", str(image), "--skip-apt", "--skip-venv", *pki, "--public-url", PUBLIC],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and "pass --skip-apt, --skip-venv and --skip-db" in done.stderr
    release = image / "etc" / "os-release"
    release.write_text('VERSION_ID="11"\nVERSION_CODENAME=bullseye\nID=debian\n')
    assert "'bullseye'" in refused(image, *pki, "--public-url", PUBLIC)


def socket_dir(cluster_url: str) -> str:
    """The throwaway cluster's socket folder (tests/services.postgresql), found by its port: the
    installer's database address goes through a local socket, not TCP."""
    port = cluster_url.rsplit(":", 1)[1].split("/")[0]
    [found] = glob.glob(os.path.join(tempfile.gettempdir(), "kc-pg-*", "sock", f".s.PGSQL.{port}"))
    return os.path.dirname(found)


def psql(cluster_url: str, database: str, sql: str) -> str:
    port = cluster_url.rsplit(":", 1)[1].split("/")[0]
    done = subprocess.run(
        ["psql", "-X", "-tA", "-h", "127.0.0.1", "-p", port, "-U", "kc", "-d", database, "-c", sql],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.strip()


def test_the_database_step_makes_a_role_that_owns_its_schema(pg_cluster: str, tmp_path: Path) -> None:
    """setup-database.sh against a real cluster, then the migrations run as that role over the
    local socket, with the address form the installer writes into every worker's configuration."""
    name = f"kc_{uuid.uuid4().hex[:8]}"
    port = pg_cluster.rsplit(":", 1)[1].split("/")[0]
    env = {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": port, "PGUSER": "kc"}
    script = [str(INSTALL / "setup-database.sh"), name]
    done = subprocess.run(script, capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert f"creating role {name}" in done.stdout and f"creating database {name} owned by {name}" in done.stdout
    again = subprocess.run(script, capture_output=True, text=True, timeout=60, env=env)
    assert (again.returncode, again.stdout) == (0, "")

    url = f"postgresql+asyncpg://{name}@/{name}?host={socket_dir(pg_cluster)}&port={port}"
    config = tmp_path / "server.toml"
    config.write_text(
        f'[server]\ndata_dir = "{tmp_path / "data"}"\n\n[broker]\nhost = "127.0.0.1"\n\n[database]\nurl = "{url}"\n'
    )
    migrate = [sys.executable, "-m", "kuaichu.cli", "server", "migrate", "--config", str(config)]
    migrated = subprocess.run(migrate, capture_output=True, text=True, timeout=120)
    assert migrated.returncode == 0, migrated.stderr
    owners = psql(pg_cluster, name, "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")
    assert owners == name

    # A database already there under another owner is named, not taken over.
    taken = f"kc_{uuid.uuid4().hex[:8]}"
    psql(pg_cluster, "postgres", f"CREATE DATABASE {taken}")
    done = subprocess.run([str(INSTALL / "setup-database.sh"), name, taken], capture_output=True, text=True, env=env)
    assert done.returncode == 1 and f"database {taken} belongs to kc, not {name}" in done.stderr
