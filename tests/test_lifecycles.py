"""Every transition of a case's and a call's lifecycle, legal and illegal: events in, state out.

The expected tables are written out here as grids, independently of the tables in
``server.lifecycles``, so a changed move shows up as a failing cell.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

import pytest

from server.lifecycles.call import CALL, CallEvent, CallState
from server.lifecycles.case import CASE, CaseAction, CaseStatus
from server.lifecycles.machine import IllegalMove, Lifecycle

# One row per state, one column per event in the enum's order; "-" is an illegal move.
S = TypeVar("S", bound=StrEnum)
E = TypeVar("E", bound=StrEnum)

CASE_GRID = """
new          new  new          escalated  handed_over  -           -
escalated    -    -            -          -            -           -
handed_over  -    handed_over  -          -            determined  -
determined   -    -            -          -            determined  delivered
delivered    -    -            -          -            determined  -
"""

CALL_GRID = """
connecting    live  reconnecting  connecting    connecting  degraded  ended
live          live  reconnecting  reconnecting  live        live      ended
reconnecting  live  reconnecting  reconnecting  live        degraded  ended
degraded      live  degraded      degraded      degraded    degraded  ended
ended         ended ended         ended         ended       -         -
"""


def _cells(grid: str, events: list[str]) -> list[tuple[str, str, str | None]]:
    cells = []
    for line in grid.strip().splitlines():
        state, *outcomes = line.split()
        assert len(outcomes) == len(events), line
        cells += [(state, e, None if to == "-" else to) for e, to in zip(events, outcomes, strict=True)]
    return cells


CASE_CELLS = _cells(CASE_GRID, list(CaseAction))
CALL_CELLS = _cells(CALL_GRID, list(CallEvent))


def test_the_grids_cover_every_state_and_event() -> None:
    assert {s for s, _, _ in CASE_CELLS} == set(CaseStatus)
    assert {s for s, _, _ in CALL_CELLS} == set(CallState)
    assert len(CASE_CELLS) == len(CaseStatus) * len(CaseAction)
    assert len(CALL_CELLS) == len(CallState) * len(CallEvent)


@pytest.mark.parametrize(("state", "action", "expected"), CASE_CELLS)
def test_case_transition(state: str, action: str, expected: str | None) -> None:
    _check(CASE, state, CaseAction(action), expected)


@pytest.mark.parametrize(("state", "event", "expected"), CALL_CELLS)
def test_call_transition(state: str, event: str, expected: str | None) -> None:
    _check(CALL, state, CallEvent(event), expected)


def _check(lifecycle: Lifecycle[S, E], state: str, event: E, expected: str | None) -> None:
    if expected is None:
        assert not lifecycle.allows(state, event)
        with pytest.raises(IllegalMove, match=f"illegal {lifecycle.name} move: {event} while {state}") as raised:
            lifecycle.after(state, event)
        assert (raised.value.state, raised.value.event) == (state, event)
    else:
        assert lifecycle.allows(state, event)
        after = lifecycle.after(state, event)
        assert after == expected and type(after) is lifecycle.states


def test_the_databases_plain_strings_are_taken_and_unknown_ones_refused() -> None:
    assert CASE.after("new", CaseAction.HAND_OVER) is CaseStatus.HANDED_OVER
    with pytest.raises(ValueError, match="'answered' is not a valid CaseStatus"):
        CASE.after("answered", CaseAction.WORK)


def test_the_values_are_those_the_database_and_the_api_already_hold() -> None:
    assert [s.value for s in CaseStatus] == ["new", "escalated", "handed_over", "determined", "delivered"]
    assert [s.value for s in CallState] == ["connecting", "live", "reconnecting", "degraded", "ended"]
    assert CASE.initial is CaseStatus.NEW and CALL.initial is CallState.CONNECTING


def test_a_case_from_report_to_delivery_and_a_correction() -> None:
    status = CASE.initial
    for action in (CaseAction.WORK, CaseAction.CLEAR_ROAD, CaseAction.HAND_OVER, CaseAction.CLEAR_ROAD):
        status = CASE.after(status, action)
    assert status is CaseStatus.HANDED_OVER
    status = CASE.after(CASE.after(status, CaseAction.DETERMINE), CaseAction.DELIVER)
    assert status is CaseStatus.DELIVERED
    assert CASE.after(status, CaseAction.DETERMINE) is CaseStatus.DETERMINED  # a corrected version
    assert not CASE.allows(CaseStatus.HANDED_OVER, CaseAction.WORK)  # the evidence is closed


def test_a_call_that_loses_its_video_path_and_finds_it_again() -> None:
    events = [
        (CallEvent.CONNECTED, CallState.LIVE),
        (CallEvent.MEDIA_STALLED, CallState.RECONNECTING),
        (CallEvent.SCENE_SAMPLE, CallState.DEGRADED),
        (CallEvent.CONNECTION_LOST, CallState.DEGRADED),
        (CallEvent.CONNECTED, CallState.LIVE),
        (CallEvent.SCENE_SAMPLE, CallState.LIVE),
        (CallEvent.END, CallState.ENDED),
        (CallEvent.CONNECTION_LOST, CallState.ENDED),  # its peer connection closing, reported late
    ]
    state = CALL.initial
    for event, expected in events:
        state = CALL.after(state, event)
        assert state is expected, event


def test_every_state_has_a_label_chinese_first_and_every_case_status_says_what_happens_next() -> None:
    assert set(CASE.labels) == set(CaseStatus) and set(CALL.labels) == set(CallState)
    labels: list[tuple[StrEnum, str]] = [*CASE.labels.items(), *CALL.labels.items()]
    for state, label in labels:
        chinese, english = label.split(" ", 1)
        assert all("\u4e00" <= c <= "\u9fff" for c in chinese), state
        assert english == state.value.replace("_", " ")
    assert set(CASE.next_steps) == set(CaseStatus)
    assert all(sentence.endswith("。") for sentence in CASE.next_steps.values())
    assert CALL.next_steps == {}


def test_a_lifecycle_with_a_state_left_unlabelled_is_refused() -> None:
    with pytest.raises(ValueError, match="no label"):
        Lifecycle("case", CaseStatus, CaseAction, CaseStatus.NEW, {}, {CaseStatus.NEW: "新报警 new"})
    with pytest.raises(ValueError, match="every state or none"):
        Lifecycle("case", CaseStatus, CaseAction, CaseStatus.NEW, {}, CASE.labels, {CaseStatus.NEW: "…"})


def test_what_the_pages_read() -> None:
    page = CASE.as_json()
    assert page["initial"] == "new"
    assert page["values"]["HANDED_OVER"] == "handed_over"
    assert page["events"]["CLEAR_ROAD"] == "clear_road"
    assert page["states"]["new"]["label"] == "新报警 new"
    assert page["states"]["handed_over"]["moves"] == {"clear_road": "handed_over", "determine": "determined"}
    assert page["states"]["escalated"]["moves"] == {}
    assert page["states"]["delivered"]["next"] == CASE.next_steps[CaseStatus.DELIVERED]
    call = CALL.as_json()
    assert call["states"]["degraded"] == {
        "label": "降级 degraded",
        "moves": {
            "connected": "live",
            "connection_lost": "degraded",
            "media_stalled": "degraded",
            "media_resumed": "degraded",
            "scene_sample": "degraded",
            "end": "ended",
        },
    }
