"""Real services for the tests, started from installed binaries on free ports and stopped after.

Nothing here depends on a broker or database the machine may already run: each test session gets
its own Mosquitto (with the configuration under test) and its own throwaway PostgreSQL cluster.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 15.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on port {port} after {timeout}s")


def terminate(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not gone in 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Mosquitto:
    """A private broker; ``restart()`` keeps its ports, as a real broker restart does. ``port`` is
    the devices' listener, ``server_port`` the server workers' (provisioning/broker.py)."""

    port: int
    conf: Path
    log: Path
    server_port: int | None = None
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.proc = subprocess.Popen(
            [binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=self.log.open("ab")
        )
        wait_for_port(self.port, proc=self.proc)
        if self.server_port is not None:
            wait_for_port(self.server_port, proc=self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


def _pg_bindir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    found = shutil.which("pg_ctl")
    path = Path(candidates[0]) if candidates else Path(found) if found else None
    if path is None:
        raise RuntimeError("PostgreSQL server binaries not found: install the 'postgresql' package (install.sh does)")
    return path.resolve().parent


def create_database(cluster_url: str) -> str:
    """A new empty database in a cluster from ``postgresql()``; returns its URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    base, _ = cluster_url.rsplit("/", 1)
    port = base.rsplit(":", 1)[1]
    subprocess.run(
        [str(_pg_bindir() / "createdb"), "-h", "127.0.0.1", "-p", port, "-U", "kc", name],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return f"{base}/{name}"


@contextlib.contextmanager
def postgresql() -> Iterator[str]:
    """A throwaway cluster on a free port; yields its SQLAlchemy asyncpg URL.

    PostgreSQL refuses to run as root, so as root the cluster belongs to the 'postgres' system user.
    """
    bindir = _pg_bindir()
    port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="kc-pg-"))
    data, sock = tmp / "data", tmp / "sock"
    sock.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(tmp, pw.pw_uid, pw.pw_gid)
        os.chown(sock, pw.pw_uid, pw.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]

    def run(*args: str) -> None:
        subprocess.run([*prefix, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    run(str(bindir / "initdb"), "-D", str(data), "-U", "kc", "--auth=trust", "-E", "UTF8", "--no-locale")
    run(
        str(bindir / "pg_ctl"),
        "-D",
        str(data),
        "-w",
        "-l",
        str(tmp / "pg.log"),
        "-o",
        f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off",
        "start",
    )
    try:
        run(str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "kc", "kuaichu")
        yield f"postgresql+asyncpg://kc@127.0.0.1:{port}/kuaichu"
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(tmp, ignore_errors=True)


@dataclass
class Coturn:
    """A private TURN server on loopback (long-term credentials, realm ``kuaichu``), in the foreground.

    Loopback peers are allowed, as every peer in a test lives on this machine; coturn refuses them
    otherwise. It logs verbosely to ``log``: allocations, refused credentials and, when an
    allocation closes, the bytes it relayed for each user.
    """

    port: int
    folder: Path
    users: dict[str, str]
    realm: str = "kuaichu"
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log(self) -> Path:
        return self.folder / "turn.log"

    def url(self, transport: str = "udp") -> str:
        return f"turn:127.0.0.1:{self.port}?transport={transport}"

    def start(self) -> None:
        binary = shutil.which("turnserver") or "/usr/bin/turnserver"
        users = [arg for name, password in self.users.items() for arg in ("--user", f"{name}:{password}")]
        self.proc = subprocess.Popen(
            [
                binary,
                "-n",  # no configuration file: everything is on this command line
                "--no-cli",
                "--listening-ip=127.0.0.1",
                "--relay-ip=127.0.0.1",
                f"--listening-port={self.port}",
                "--allow-loopback-peers",
                "--no-tls",
                "--no-dtls",
                "--lt-cred-mech",
                f"--realm={self.realm}",
                *users,
                f"--userdb={self.folder / 'turndb'}",
                f"--pidfile={self.folder / 'turnserver.pid'}",
                f"--log-file={self.log}",
                "--simple-log",
                "--no-stdout-log",
                "--verbose",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, proc=self.proc)  # its TCP listener opens with the UDP one

    def stop(self) -> None:
        if self.proc is not None:
            terminate(self.proc)
        self.proc = None


@contextlib.contextmanager
def coturn(folder: Path, users: dict[str, str]) -> Iterator[Coturn]:
    """Debian's coturn (install.sh installs it) started for one test."""
    folder.mkdir(parents=True, exist_ok=True)
    server = Coturn(free_port(), folder, users)
    server.start()
    try:
        yield server
    finally:
        server.stop()
