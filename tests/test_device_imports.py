"""What a unit loads at boot: the call stack and dnspython wait for the first call.

An idle unit's memory budget (120 MB resident) is mostly imports; these tests keep the heavy ones
off the boot path without taking them away from the call that needs them.
"""

from __future__ import annotations

import subprocess
import sys

CALL_ONLY = ("aiortc", "aioice", "av", "dns")


def loaded_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", probe], check=True, capture_output=True, text=True, timeout=120)
    return set(out.stdout.split())


def test_a_booting_unit_loads_neither_the_call_stack_nor_dnspython() -> None:
    loaded = loaded_after("import kuaichu.cli\nkuaichu.cli._parser()\nimport device.main")  # kuaichu device run
    assert "paho" in loaded and "aiomqtt" in loaded
    assert loaded.isdisjoint(CALL_ONLY), loaded & set(CALL_ONLY)


def test_the_first_call_still_gets_dnspython_for_its_ice() -> None:
    loaded = loaded_after("import device.main\nimport aioice.mdns\nimport device.call.agent")
    assert {"dns", "aioice"} <= loaded


def test_paho_loaded_first_elsewhere_is_left_as_it_is() -> None:
    loaded = loaded_after("import paho.mqtt.client\nimport device.main\nassert paho.mqtt.client.HAVE_DNS")
    assert "dns" in loaded
