"""Firmware of the Kuaichu reporting units (in-car unit and roadside kiosk).

``hal`` holds the hardware behind small interfaces, each with the backend a Raspberry Pi runs and
a simulated one; everything above it is the same code on a Pi, in the demo and in the tests.
"""

import sys


def _load_paho_without_dnspython() -> None:
    """Load paho-mqtt before any unit module can, with dnspython hidden from it.

    paho imports dnspython, when it is installed, only for ``connect_srv``; a unit always connects
    to the broker host in its configuration. dnspython is installed (aiortc's ICE needs it in a
    call) and would cost an idle unit about 10 MB resident, a twelfth of its memory budget, from
    boot. Hidden while paho loads, it is imported by the first call instead.
    """
    if "paho.mqtt.client" in sys.modules or "dns" in sys.modules:
        return
    sys.modules["dns"] = None  # type: ignore[assignment]  # makes ``import dns.resolver`` fail
    try:
        import paho.mqtt.client  # noqa: F401
    finally:
        del sys.modules["dns"]


_load_paho_without_dnspython()
