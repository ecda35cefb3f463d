"""The lifecycles as the pages read them: values, labels, what happens next, which event leads where.

Open to anyone: it holds no case data, and the parties' pages, which have no console session, tell
their progress from the same source as the consoles.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from server.lifecycles.call import CALL
from server.lifecycles.case import CASE

router = APIRouter(prefix="/api", tags=["lifecycles"])
LIFECYCLES = {"case": CASE.as_json(), "call": CALL.as_json()}


@router.get("/lifecycles")
async def lifecycles() -> dict[str, Any]:
    """``case`` and ``call``, each with ``values`` by name, its ``events`` by name, its ``initial``
    value and its ``states``: per value the ``label`` (Chinese first, English after), the ``moves``
    (event -> next value) and, for a case, ``next``: what happens next, in plain Chinese."""
    return LIFECYCLES
