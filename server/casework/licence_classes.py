"""Which driving-licence classes (准驾车型) cover which vehicle types (公安部令第162号, annex 1).

A vehicle type is the registration's GA 24.4 code; a licence holds one or more classes, and each
class also permits the lesser classes listed for it.
"""

from __future__ import annotations

# class -> every class it permits, itself included
PERMITS: dict[str, frozenset[str]] = {
    c: frozenset(v.split())
    for c, v in {
        "A1": "A1 A3 B1 B2 C1 C2 C3 C4 M",
        "A2": "A2 B1 B2 C1 C2 C3 C4 C6 M",
        "A3": "A3 C1 C2 C3 C4",
        "B1": "B1 C1 C2 C3 C4 M",
        "B2": "B2 C1 C2 C3 C4 M",
        "C1": "C1 C2 C3 C4",
        "C2": "C2",
        "C3": "C3 C4",
        "C4": "C4",
        "C5": "C5",
        "C6": "C6",
        "D": "D E F",
        "E": "E F",
        "F": "F",
        "M": "M",
        "N": "N",
        "P": "P",
    }.items()
}

# vehicle type -> (name, the class it needs; automatic small cars also take C2)
VEHICLE_TYPES: dict[str, tuple[str, str]] = {
    "K11": ("大型普通客车", "A1"),
    "K21": ("中型普通客车", "B1"),
    "K31": ("小型普通客车", "C1"),
    "K33": ("小型轿车", "C1"),
    "K41": ("微型普通客车", "C1"),
    "H11": ("重型普通货车", "B2"),
    "H21": ("中型普通货车", "B2"),
    "H31": ("轻型普通货车", "C1"),
    "H41": ("微型普通货车", "C1"),
    "Q11": ("重型半挂牵引车", "A2"),
    "N11": ("三轮汽车", "C4"),
    "M11": ("普通正三轮摩托车", "D"),
    "M21": ("普通二轮摩托车", "E"),
    "M22": ("轻便二轮摩托车", "F"),
}
_C2_OK = {"K31", "K33", "K41", "H31", "H41"}


def classes_error(classes: str) -> str | None:
    unknown = [c for c in classes.split() if c not in PERMITS]
    if not classes.split():
        return "no licence class"
    return f"unknown licence class(es): {' '.join(unknown)}" if unknown else None


def covers(licence_classes: str, vehicle_type: str, automatic: bool) -> bool:
    needed = {VEHICLE_TYPES[vehicle_type][1]}
    if automatic and vehicle_type in _C2_OK:
        needed.add("C2")
    held = set().union(*(PERMITS[c] for c in licence_classes.split()))
    return bool(held & needed)


def vehicle_type_name(code: str) -> str:
    return VEHICLE_TYPES[code][0] if code in VEHICLE_TYPES else code
