"""The GNSS receiver on a serial port (a u-blox or MediaTek module on the Pi's UART or on USB).

pyserial's reads block, so they run in a reader thread that hands each chunk to the event loop
with ``call_soon_threadsafe``; parsing and everything after it happen on the loop in ``Gnss``.
A port that cannot be opened or goes away (a USB receiver pulled out) is reported and retried
every few seconds: the device keeps running and reports on the fix it last had, or none.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import serial

from device.config import GnssSection
from device.hal.gnss import Gnss

log = logging.getLogger(__name__)

RETRY_S = 3.0
READ_TIMEOUT_S = 0.2  # how often the reader thread looks up to see whether it must stop


class SerialGnss(Gnss):
    """``port`` overrides ``cfg.port`` (the simulated receiver passes its pseudo-terminal)."""

    def __init__(self, cfg: GnssSection, *, port: str | None = None, retry_s: float = RETRY_S) -> None:
        super().__init__(cfg)
        self.port = port if port is not None else cfg.port
        self._retry_s = retry_s
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    async def start(self) -> None:
        if self._thread is not None:
            return
        loop = asyncio.get_running_loop()
        self._stopping.clear()
        self._started()
        self._thread = threading.Thread(target=self._run, args=(loop,), name="gnss-reader", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        await asyncio.to_thread(thread.join)

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        reported: str | None = None
        while not self._stopping.is_set():
            try:
                port = serial.Serial(self.port, self.cfg.baud, timeout=READ_TIMEOUT_S, exclusive=True)
            except (OSError, ValueError) as exc:  # serial.SerialException is an OSError
                problem = f"cannot open {self.port}: {_reason(exc)}"
                if problem != reported:
                    log.warning("gnss: %s; retrying every %.0f s", problem, self._retry_s)
                    reported = problem
                self._post(loop, self._port_problem, problem)
                self._stopping.wait(self._retry_s)
                continue
            log.info("gnss: reading %s at %d baud", self.port, self.cfg.baud)
            reported = None
            self._post(loop, self._port_opened)
            try:
                with port:
                    self._pump(port, loop)
            except OSError as exc:
                reported = f"lost {self.port}: {_reason(exc)}"
                log.warning("gnss: %s; retrying every %.0f s", reported, self._retry_s)
                self._post(loop, self._port_problem, reported)
                self._stopping.wait(self._retry_s)

    def _pump(self, port: Any, loop: asyncio.AbstractEventLoop) -> None:
        heard = time.monotonic()
        silent = False
        while not self._stopping.is_set():
            data: bytes = port.read(max(1, port.in_waiting))
            now = time.monotonic()
            if data:
                if silent:
                    log.info("gnss: receiver talking again")
                    silent = False
                heard = now
                self._post(loop, self._feed, data)
            elif not silent and now - heard > self.cfg.silent_after_s:
                log.warning("gnss: receiver silent for %.0f s", now - heard)
                silent = True

    def _post(self, loop: asyncio.AbstractEventLoop, callback: Callable[..., None], *args: Any) -> None:
        try:
            loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # the loop is closed: the device is shutting down without stop()
            self._stopping.set()


def _reason(exc: Exception) -> str:
    errno = getattr(exc, "errno", None)
    return os.strerror(errno) if isinstance(errno, int) else str(exc)
