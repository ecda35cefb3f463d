"""Every move of the review lifecycle, legal and illegal, from a grid written out here independently
of ``server.lifecycles.review``; and its labels and what-happens-next, Chinese first."""

from __future__ import annotations

import pytest

from server.lifecycles.machine import IllegalMove
from server.lifecycles.review import OWNER, REVIEW, ReviewAction, ReviewStatus

# One row per state; columns: join forward accept decline uphold redetermine; "-" is illegal.
GRID = """
requested     requested  forwarded  -         -             -       -
forwarded     -          -          accepted  not_accepted  -       -
accepted      -          -          -         -             upheld  redetermine
not_accepted  -          -          -         -             -       -
upheld        -          -          -         -             -       -
redetermine   -          -          -         -             -       -
"""


def _cells() -> list[tuple[str, str, str | None]]:
    cells = []
    for line in GRID.strip().splitlines():
        state, *outcomes = line.split()
        assert len(outcomes) == len(ReviewAction), line
        cells += [(state, e.value, None if to == "-" else to) for e, to in zip(ReviewAction, outcomes, strict=True)]
    return cells


CELLS = _cells()


def test_the_grid_covers_every_state_and_action() -> None:
    assert {s for s, _, _ in CELLS} == set(ReviewStatus)
    assert len(CELLS) == len(ReviewStatus) * len(ReviewAction)


@pytest.mark.parametrize(("state", "action", "expected"), CELLS)
def test_review_transition(state: str, action: str, expected: str | None) -> None:
    event = ReviewAction(action)
    assert REVIEW.allows(state, event) is (expected is not None)
    if expected is None:
        with pytest.raises(IllegalMove):
            REVIEW.after(state, event)
    else:
        assert REVIEW.after(state, event) == expected


def test_every_status_has_a_chinese_label_and_says_what_happens_next() -> None:
    for status in ReviewStatus:
        label, nxt = REVIEW.labels[status], REVIEW.next_steps[status]
        assert "\u4e00" <= label[0] <= "\u9fff", label
        assert "\u4e00" <= nxt[0] <= "\u9fff" and nxt.endswith("。"), nxt
    assert REVIEW.initial is ReviewStatus.REQUESTED
    # Only the open statuses wait for someone, each with its stored deadline.
    assert set(OWNER) == {ReviewStatus.REQUESTED, ReviewStatus.FORWARDED, ReviewStatus.ACCEPTED}
    assert [column for _, column in OWNER.values()] == ["forward_due", "decide_due", "conclude_due"]


def test_the_pages_read_it_like_the_others() -> None:
    shape = REVIEW.as_json()
    assert shape["values"]["NOT_ACCEPTED"] == "not_accepted"
    assert shape["states"]["accepted"]["moves"] == {"uphold": "upheld", "redetermine": "redetermine"}
