"""How another party's personal data is shown to a party: enough to recognise who it is, not enough
to use it (the 12123 app's conventions: 张*, 5301**********1234, 138****8000). Plates are shown in
full: they are on the road for everyone to see, and a party needs them for the insurer."""

from __future__ import annotations


def mask_name(name: str) -> str:
    name = name.strip()
    if not name:
        return ""
    return name[0] + "*" * max(1, len(name) - 1)


def mask_id_number(id_number: str) -> str:
    """First four (the province and city) and last four, as on receipts."""
    id_number = id_number.strip()
    if len(id_number) <= 8:
        return "*" * len(id_number)
    return id_number[:4] + "*" * (len(id_number) - 8) + id_number[-4:]


def mask_phone(phone: str) -> str:
    phone = phone.strip()
    if len(phone) < 7:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]
