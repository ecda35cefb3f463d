"""Every move of the claim lifecycle, legal and illegal, from a grid written out here independently
of ``server.lifecycles.claim``; the status an insurer reports maps to exactly one event; labels and
what-happens-next are Chinese first."""

from __future__ import annotations

import pytest

from server.lifecycles.claim import CLAIM, EVENT, ClaimAction, ClaimStatus
from server.lifecycles.machine import IllegalMove

# One row per state; columns: accept assign_adjuster assess pay close; "-" is illegal.
GRID = """
requested          accepted  -                  -         -     closed
accepted           -         adjuster_assigned  assessed  -     closed
adjuster_assigned  -         adjuster_assigned  assessed  -     closed
assessed           -         -                  assessed  paid  closed
paid               -         -                  -         -     closed
closed             -         -                  -         -     -
"""


def _cells() -> list[tuple[str, str, str | None]]:
    cells = []
    for line in GRID.strip().splitlines():
        state, *outcomes = line.split()
        assert len(outcomes) == len(ClaimAction), line
        cells += [(state, e.value, None if to == "-" else to) for e, to in zip(ClaimAction, outcomes, strict=True)]
    return cells


CELLS = _cells()


def test_the_grid_covers_every_state_and_action() -> None:
    assert {s for s, _, _ in CELLS} == set(ClaimStatus)
    assert len(CELLS) == len(ClaimStatus) * len(ClaimAction)


@pytest.mark.parametrize(("state", "action", "expected"), CELLS)
def test_claim_transition(state: str, action: str, expected: str | None) -> None:
    event = ClaimAction(action)
    assert CLAIM.allows(state, event) is (expected is not None)
    if expected is None:
        with pytest.raises(IllegalMove):
            CLAIM.after(state, event)
    else:
        assert CLAIM.after(state, event) == expected


def test_each_reported_status_is_reached_by_its_one_event() -> None:
    assert set(EVENT) == set(ClaimStatus) - {ClaimStatus.REQUESTED}  # requested is the party's, not the insurer's
    for status, event in EVENT.items():
        assert {to for (_, e), to in CLAIM.moves.items() if e is event} == {status}


def test_every_status_has_a_chinese_label_and_says_what_happens_next() -> None:
    for status in ClaimStatus:
        label, nxt = CLAIM.labels[status], CLAIM.next_steps[status]
        assert "\u4e00" <= label[0] <= "\u9fff", label
        assert "\u4e00" <= nxt[0] <= "\u9fff" and nxt.endswith("。"), nxt
    assert CLAIM.initial is ClaimStatus.REQUESTED
