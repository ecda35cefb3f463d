"""The plate text a dispatcher may confirm: ordinary (blue/yellow: province, authority letter,
five letters or digits), new-energy (green: six after the authority letter, D/F first or last) and
the suffixed kinds (挂 trailer, 学 learner, 警 police, 港/澳 cross-border).

Letters I and O never appear (they read as 1 and 0). This is the console's format check only; the
plate reader's full grammar, once it ships, is the one to defer to.
"""

from __future__ import annotations

import re

PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_L = "A-HJ-NP-Z"  # letters without I and O
_PLATE = re.compile(
    rf"^[{PROVINCES}][{_L}]"
    rf"(?:[{_L}0-9]{{5}}"  # ordinary
    rf"|[DF][{_L}0-9][0-9]{{4}}|[0-9]{{5}}[DF]"  # new energy: small and large vehicles
    rf"|[{_L}0-9]{{4}}[挂学警港澳])$"
)


def normalise_plate(text: str) -> str:
    """What a dispatcher types, as plates are written: no spaces or dots, upper case."""
    return re.sub(r"[\s·.\-]", "", text).upper()


def plate_error(plate: str) -> str | None:
    """Why ``plate`` is not a plate, or None."""
    if not plate:
        return "plate is empty"
    if plate[0] not in PROVINCES:
        return f"plate {plate!r} does not start with a province character"
    if not _PLATE.match(plate):
        return f"plate {plate!r} is not a valid plate (e.g. 云A5H821, 云AD12345)"
    return None
