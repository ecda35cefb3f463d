"""Every transition of the device's reporting state machine, with the exact effects it asks for.

The order of the effects matters: the report is stored before anything is shown or said, and
the driver hears the case number before being told a dispatcher will call.
"""

from __future__ import annotations

from device.hal.indicators import Beep, Signal
from device.reporting import (
    Accepted,
    AckOverdue,
    AppState,
    CaseHoldExpired,
    LinkChanged,
    NewReport,
    Prompt,
    Refused,
    ReportingMachine,
    Say,
    SayCaseNo,
    SelfTestAnswered,
    Show,
    Sound,
    StartCaseHold,
    Triggered,
)
from protocol.messages import Trigger

R1 = "01JV6A38WMQD5YD17TBD5D5KGS"
R2 = "01JV6A4Z8N0Q3CPEH5J7M2R9TW"
OLD = "01JV69ZZZZ0000000000000000"
CASE = "530102202505140007"

STARTED = [
    NewReport(Trigger.BUTTON, R1),
    Sound(Beep.ACCEPTED),
    Show(Signal.REPORTING),
    Say(Prompt.REPORTING),
    Say(Prompt.SAFETY),
]
WARNED = [Show(Signal.RETRYING), Say(Prompt.RETRYING)]
CASE_OPENED = [
    Show(Signal.CASE_OPEN),
    Sound(Beep.CASE_NUMBER),
    SayCaseNo(CASE),
    Say(Prompt.DISPATCHER),
    StartCaseHold(R1),
]
FAILED = [Show(Signal.FAILED), Sound(Beep.FAILURE), Say(Prompt.FAILED)]


def _online() -> ReportingMachine:
    machine = ReportingMachine()
    assert machine.handle(LinkChanged(True)) == [Show(Signal.IDLE)]
    return machine


def _reporting(link_up: bool = True) -> ReportingMachine:
    machine = _online() if link_up else ReportingMachine()
    machine.handle(Triggered(Trigger.BUTTON, R1))
    assert machine.state is AppState.REPORTING
    return machine


def _in_case() -> ReportingMachine:
    machine = _reporting()
    machine.handle(Accepted(R1, CASE))
    assert machine.state is AppState.IN_CASE
    return machine


def test_a_new_machine_is_idle_and_offline() -> None:
    machine = ReportingMachine()
    assert (machine.state, machine.link_up, machine.current, machine.case_no) == (AppState.IDLE, False, None, None)
    assert machine.handle(LinkChanged(False)) == [Show(Signal.OFFLINE)]
    assert machine.handle(LinkChanged(True)) == [Show(Signal.IDLE)]
    assert machine.handle(LinkChanged(False)) == [Show(Signal.OFFLINE)]
    assert machine.state is AppState.IDLE


def test_press_while_idle_with_the_link_up() -> None:
    machine = _online()
    assert machine.handle(Triggered(Trigger.BUTTON, R1)) == STARTED
    assert (machine.state, machine.current, machine.warned) == (AppState.REPORTING, R1, False)
    assert machine.log == ["idle -> reporting on Triggered"]


def test_press_while_idle_with_the_link_down_warns_at_once() -> None:
    machine = ReportingMachine()
    assert machine.handle(Triggered(Trigger.BUTTON, R1)) == STARTED + WARNED
    assert (machine.state, machine.current, machine.warned) == (AppState.REPORTING, R1, True)


def test_the_hazard_switch_reports_like_the_button() -> None:
    machine = _online()
    assert machine.handle(Triggered(Trigger.HAZARD, R1)) == [NewReport(Trigger.HAZARD, R1), *STARTED[1:]]


def test_a_second_press_while_reporting_is_ignored() -> None:
    machine = _reporting()
    assert machine.handle(Triggered(Trigger.BUTTON, R2)) == []
    assert machine.handle(Triggered(Trigger.HAZARD, R2)) == []
    assert (machine.state, machine.current) == (AppState.REPORTING, R1)


def test_accepted_for_the_current_report_opens_the_case() -> None:
    machine = _reporting()
    assert machine.handle(Accepted(R1, CASE)) == CASE_OPENED
    assert (machine.state, machine.current, machine.case_no) == (AppState.IN_CASE, R1, CASE)
    assert machine.log[-1] == "reporting -> in_case on Accepted"


def test_accepted_for_an_old_report_changes_nothing() -> None:
    machine = _reporting()
    assert machine.handle(Accepted(OLD, "530102202505130001")) == []
    assert (machine.state, machine.current, machine.case_no) == (AppState.REPORTING, R1, None)
    idle = _online()
    assert idle.handle(Accepted(R1, CASE)) == []
    assert idle.state is AppState.IDLE


def test_a_second_acceptance_of_the_open_case_changes_nothing() -> None:
    machine = _in_case()
    assert machine.handle(Accepted(R1, CASE)) == []
    assert machine.state is AppState.IN_CASE


def test_refusal_of_the_current_report_fails() -> None:
    machine = _reporting()
    assert machine.handle(Refused(R1, "schema")) == FAILED
    assert (machine.state, machine.current) == (AppState.FAILED, R1)
    assert machine.log[-1] == "reporting -> failed on Refused"


def test_refusal_of_another_report_changes_nothing() -> None:
    machine = _reporting()
    assert machine.handle(Refused(OLD, "schema")) == []
    assert machine.state is AppState.REPORTING
    in_case = _in_case()
    assert in_case.handle(Refused(R1, "schema")) == []
    assert in_case.state is AppState.IN_CASE


def test_a_press_after_a_failure_starts_a_new_report() -> None:
    machine = _reporting()
    machine.handle(Refused(R1, "schema"))
    assert machine.handle(LinkChanged(True)) == [Show(Signal.FAILED)]
    assert machine.handle(Triggered(Trigger.BUTTON, R2)) == [NewReport(Trigger.BUTTON, R2), *STARTED[1:]]
    assert (machine.state, machine.current) == (AppState.REPORTING, R2)


def test_an_overdue_ack_warns_once() -> None:
    machine = _reporting()
    assert machine.handle(AckOverdue(R1)) == WARNED
    assert machine.handle(AckOverdue(R1)) == []
    assert machine.handle(AckOverdue(R1)) == []
    assert machine.state is AppState.REPORTING
    assert machine.handle(Accepted(R1, CASE)) == CASE_OPENED


def test_an_overdue_ack_for_another_report_is_ignored() -> None:
    machine = _reporting()
    assert machine.handle(AckOverdue(OLD)) == []
    assert not machine.warned
    assert _in_case().handle(AckOverdue(R1)) == []


def test_no_second_warning_when_the_press_was_offline() -> None:
    machine = _reporting(link_up=False)
    assert machine.handle(LinkChanged(True)) == [Show(Signal.RETRYING)]
    assert machine.handle(AckOverdue(R1)) == []


def test_a_link_drop_while_reporting_warns_once() -> None:
    machine = _reporting()
    assert machine.handle(LinkChanged(False)) == WARNED
    assert machine.handle(LinkChanged(True)) == [Show(Signal.RETRYING)]
    assert machine.handle(LinkChanged(False)) == [Show(Signal.RETRYING)]
    assert machine.handle(AckOverdue(R1)) == []
    assert machine.state is AppState.REPORTING


def test_the_warning_is_given_again_for_the_next_report() -> None:
    machine = _reporting()
    machine.handle(AckOverdue(R1))
    machine.handle(Refused(R1, "schema"))
    machine.handle(Triggered(Trigger.BUTTON, R2))
    assert machine.handle(AckOverdue(R2)) == WARNED


def test_a_press_while_in_case_repeats_the_case_number() -> None:
    machine = _in_case()
    assert machine.handle(Triggered(Trigger.BUTTON, R2)) == [SayCaseNo(CASE)]
    assert machine.handle(Triggered(Trigger.HAZARD, R2)) == [SayCaseNo(CASE)]
    assert (machine.state, machine.current, machine.case_no) == (AppState.IN_CASE, R1, CASE)


def test_the_link_does_not_change_the_case_signal() -> None:
    machine = _in_case()
    assert machine.handle(LinkChanged(False)) == [Show(Signal.CASE_OPEN)]
    assert machine.handle(LinkChanged(True)) == [Show(Signal.CASE_OPEN)]


def test_case_hold_expiry_makes_the_device_ready_again() -> None:
    machine = _in_case()
    assert machine.handle(CaseHoldExpired(R1)) == [Show(Signal.IDLE)]
    assert (machine.state, machine.current, machine.case_no) == (AppState.IDLE, None, None)
    assert machine.log[-1] == "in_case -> idle on CaseHoldExpired"
    assert machine.handle(Triggered(Trigger.BUTTON, R2)) == [NewReport(Trigger.BUTTON, R2), *STARTED[1:]]


def test_case_hold_expiry_while_offline_shows_offline() -> None:
    machine = _in_case()
    machine.handle(LinkChanged(False))
    assert machine.handle(CaseHoldExpired(R1)) == [Show(Signal.OFFLINE)]
    assert machine.state is AppState.IDLE


def test_an_old_case_hold_expiring_changes_nothing() -> None:
    machine = _in_case()
    assert machine.handle(CaseHoldExpired(OLD)) == []
    assert machine.state is AppState.IN_CASE
    reporting = _reporting()
    assert reporting.handle(CaseHoldExpired(R1)) == []
    assert reporting.state is AppState.REPORTING


def test_restore_an_open_case() -> None:
    machine = ReportingMachine()
    assert machine.restore(AppState.IN_CASE, R1, CASE) == [Show(Signal.CASE_OPEN), StartCaseHold(R1)]
    assert (machine.state, machine.current, machine.case_no) == (AppState.IN_CASE, R1, CASE)
    assert machine.handle(Triggered(Trigger.BUTTON, R2)) == [SayCaseNo(CASE)]
    assert machine.handle(CaseHoldExpired(R1)) == [Show(Signal.OFFLINE)]


def test_restore_an_unanswered_report() -> None:
    machine = ReportingMachine()
    assert machine.restore(AppState.REPORTING, R1) == [Show(Signal.REPORTING)]
    assert (machine.state, machine.current) == (AppState.REPORTING, R1)
    assert machine.handle(Triggered(Trigger.BUTTON, R2)) == []
    assert machine.handle(LinkChanged(True)) == [Show(Signal.REPORTING)]
    assert machine.handle(AckOverdue(R1)) == WARNED
    assert machine.handle(Accepted(R1, CASE)) == CASE_OPENED


def test_restore_idle() -> None:
    machine = ReportingMachine()
    assert machine.restore(AppState.IDLE, None) == [Show(Signal.OFFLINE)]
    assert machine.state is AppState.IDLE
    online = ReportingMachine(link_up=True)
    assert online.restore(AppState.IDLE, None) == [Show(Signal.IDLE)]


def test_restore_failed() -> None:
    machine = ReportingMachine()
    assert machine.restore(AppState.FAILED, R1) == [Show(Signal.FAILED)]
    assert machine.state is AppState.FAILED


def test_the_log_has_one_line_per_state_change() -> None:
    machine = _online()
    machine.handle(Triggered(Trigger.BUTTON, R1))
    machine.handle(Triggered(Trigger.BUTTON, R2))
    machine.handle(AckOverdue(R1))
    machine.handle(Accepted(R1, CASE))
    machine.handle(CaseHoldExpired(R1))
    assert machine.log == [
        "idle -> reporting on Triggered",
        "reporting -> in_case on Accepted",
        "in_case -> idle on CaseHoldExpired",
    ]


def test_a_test_report_acknowledged_returns_to_idle_without_a_case() -> None:
    machine = ReportingMachine(link_up=True)
    machine.handle(Triggered(Trigger.TEST, "01JTEST0000000000000000000"))
    assert machine.handle(SelfTestAnswered("01JOTHER000000000000000000")) == []
    states = [machine.state]
    effects = machine.handle(SelfTestAnswered("01JTEST0000000000000000000"))
    states.append(machine.state)
    assert effects == [Sound(Beep.CASE_NUMBER), Show(Signal.IDLE)]
    assert states == [AppState.REPORTING, AppState.IDLE] and machine.case_no is None
