"""Telling systemd how the firmware is doing: ready, still alive, stopping.

The unit (``device/install/kuaichu-device.service``) runs the firmware as ``Type=notify`` with a
watchdog: systemd counts it as started only once a press would count, and kills and restarts it
when the event loop stops answering. The protocol is one datagram of ``KEY=value`` lines to the
socket named in ``NOTIFY_SOCKET``; it is written here with the socket module, because a binding to
libsystemd would have to be built in the device's virtualenv. Outside systemd (the demo, the tests,
a technician's shell) ``NOTIFY_SOCKET`` is unset and every call here does nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping

logger = logging.getLogger(__name__)

# How often the status line is refreshed when systemd asked for no watchdog.
STATUS_EVERY_S = 5.0


class Notifier:
    """The service manager's notify socket, if there is one. Sends never block and never raise:
    a full or vanished socket costs a message, not the firmware."""

    def __init__(self, address: str | None, watchdog_s: float | None = None) -> None:
        self._address = address
        self._watchdog_s = watchdog_s
        self._sock: socket.socket | None = None
        self._failing = False
        self._stopping = False

    @classmethod
    def from_environment(cls, env: Mapping[str, str] = os.environ) -> Notifier:
        """What systemd put in the environment: the socket, and the watchdog timeout if it is ours.

        ``WATCHDOG_PID`` names the process the watchdog is meant for; a process that inherited the
        variables from a parent that systemd watches must not ping on its behalf.
        """
        address = env.get("NOTIFY_SOCKET") or None
        if address is not None and not address.startswith(("/", "@")):
            logger.warning("NOTIFY_SOCKET %r is neither a path nor an abstract socket; not notifying", address)
            address = None
        watchdog_s = None
        usec, pid = env.get("WATCHDOG_USEC"), env.get("WATCHDOG_PID")
        if address is not None and usec and (pid is None or pid == str(os.getpid())):
            try:
                watchdog_s = int(usec) / 1_000_000 if int(usec) > 0 else None
            except ValueError:
                logger.warning("WATCHDOG_USEC %r is not a number of microseconds; no watchdog pings", usec)
        return cls(address, watchdog_s)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Ping at half the timeout, as sd_watchdog_enabled(3) advises, so one late ping is not fatal."""
        return None if self._watchdog_s is None else self._watchdog_s / 2

    def send(self, *fields: str) -> bool:
        """One datagram of ``KEY=value`` fields; True if the socket took it."""
        if self._address is None:
            return False
        message = "\n".join(fields).encode()
        # A leading '@' names a socket in the abstract namespace, which the kernel spells with a NUL.
        target = "\0" + self._address[1:] if self._address.startswith("@") else self._address
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.setblocking(False)
            self._sock.sendto(message, target)
        except OSError as exc:
            # Said once per outage: a watchdog ping every 15 s would otherwise fill the journal.
            log = logger.debug if self._failing else logger.warning
            log("cannot notify the service manager at %s: %s", self._address, exc)
            self._failing = True
            return False
        if self._failing:
            logger.info("notifying the service manager at %s again", self._address)
            self._failing = False
        return True

    def ready(self, status: str) -> None:
        self.send("READY=1", _status(status))

    def status(self, status: str) -> None:
        self.send(_status(status))

    def stopping(self) -> None:
        """Once, however many ways the firmware is told to stop."""
        if not self._stopping:
            self._stopping = True
            self.send("STOPPING=1", _status("stopping"))

    async def keep_alive(self, alive: Callable[[], bool], status: Callable[[], str]) -> None:
        """Ping the watchdog from the event loop while ``alive()`` holds, and keep the status line
        current; return as soon as ``alive()`` fails, so that systemd's watchdog takes over.

        The ping runs on the loop, so a loop blocked by a stuck call misses it; ``alive()`` covers
        a loop that still turns while the app's own tasks have died.
        """
        interval = self.watchdog_interval
        shown: str | None = None
        while not self._stopping and alive():
            fields = ["WATCHDOG=1"] if interval is not None else []
            now = status()
            if now != shown:
                fields.append(_status(now))
                shown = now
            if fields:
                self.send(*fields)
            await asyncio.sleep(interval if interval is not None else STATUS_EVERY_S)
        if not self._stopping:
            logger.error("the device's tasks have stopped; no more watchdog pings, systemd will restart it")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _status(text: str) -> str:
    """``systemctl status`` shows this line; a newline would end the field early."""
    return "STATUS=" + " ".join(text.split())
