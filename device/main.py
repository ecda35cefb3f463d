"""Running the firmware as a process: open the hardware, run the app, stop cleanly on a signal."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import signal

from device.app import DeviceApp
from device.config import DeviceConfig
from device.hardware import Hardware
from device.sd_notify import Notifier

logger = logging.getLogger(__name__)


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Keep glibc from giving every thread its own heap.

    The camera, GNSS and audio threads allocate frames and buffers that the event loop frees; with
    one arena per thread (glibc's default, up to 8 per core) the freed memory stays scattered and
    resident memory creeps up by tens of megabytes on a unit that has 512 MB to 1 GB in all.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return  # not glibc: nothing to tune
    m_arena_max = -8
    libc.mallopt(m_arena_max, arenas)


async def run_device(cfg: DeviceConfig) -> None:
    notifier = Notifier.from_environment()
    cfg.device.data_dir.mkdir(parents=True, exist_ok=True)
    hardware = Hardware.open(cfg)
    app = DeviceApp(cfg, hardware)
    main = asyncio.create_task(app.run(), name="device")
    loop = asyncio.get_running_loop()

    def stop() -> None:
        notifier.stopping()
        main.cancel()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    control = None
    watchdog = None
    try:
        ready = asyncio.create_task(app.ready.wait())
        await asyncio.wait({main, ready}, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if app.ready.is_set():
            logger.info("device %s (%s) running", cfg.device.id, cfg.device.kind.value)
            if cfg.gpio.control_socket is not None:
                # Only now: a simulated press before the trigger exists would be lost.
                from device.sim.control import serve_control

                control = await serve_control(cfg.gpio.control_socket, hardware.pins, cfg.gpio)
            notifier.ready(describe(app))
            if notifier.enabled:
                watchdog = asyncio.create_task(
                    notifier.keep_alive(lambda: app.running, lambda: describe(app)), name="watchdog"
                )
        with contextlib.suppress(asyncio.CancelledError):
            await main
    finally:
        notifier.stopping()
        if watchdog is not None:
            watchdog.cancel()
        if control is not None:
            control.close()
            await control.wait_closed()
        notifier.close()
        logger.info("device %s stopped", cfg.device.id)


def describe(app: DeviceApp) -> str:
    """The line ``systemctl status kuaichu-device`` shows: enough for a technician at the unit."""
    link = "connected to" if app.link.connected.is_set() else "not connected to"
    return f"device {app.cfg.device.id} {app.machine.state.value}, {link} {app.link.broker.address}"
