"""The reporting state machine of a device: what a press, an answer or a link change means.

Pure: events in, effects out, no I/O, so every path (press while offline, refusal, a restart in the
middle of a report) is a plain unit test. ``device.app`` carries the effects out.

    idle ──press──▶ reporting ──accepted──▶ in case ──hold expires, or the server closes it──▶ idle
                       │  ▲
                 refused│  │press
                       ▼  │
                      failed

The server closes the unit's part in a case (``case.closed``) when the dispatcher hands it over
or escalates it: from then on the unit is free for the next party, not held for ``case_hold_s``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from device.hal.indicators import Beep, Signal
from protocol.messages import Trigger


class AppState(StrEnum):
    IDLE = "idle"
    REPORTING = "reporting"  # report stored, waiting for the server's answer
    IN_CASE = "in_case"  # the server opened a case; its number has been announced
    FAILED = "failed"  # the server refused the report; the driver is told to call 122


class Prompt(StrEnum):
    """Voice prompts the machine asks for; ``device.hal.prompts`` has a clip for each."""

    SAFETY = "safety"  # move to safety, set the warning sign 50-100 m behind (150 m on expressways)
    REPORTING = "reporting"
    RETRYING = "retrying"
    FAILED = "failed"
    DISPATCHER = "dispatcher"  # a dispatcher will contact you by video
    CLEAR_ROAD = "clear_road"  # the evidence is complete: leave the scene now


# --- events -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Triggered:
    kind: Trigger
    report_id: str  # chosen by the app before the report is built, so a retry reuses it


@dataclass(frozen=True)
class Accepted:
    report_id: str
    case_no: str


@dataclass(frozen=True)
class SelfTestAnswered:
    """The server answered a test report (``trigger: test``): it reached the server, no case exists."""

    report_id: str


@dataclass(frozen=True)
class Refused:
    report_id: str
    reason: str


@dataclass(frozen=True)
class AckOverdue:
    report_id: str


@dataclass(frozen=True)
class LinkChanged:
    up: bool


@dataclass(frozen=True)
class CaseHoldExpired:
    report_id: str


@dataclass(frozen=True)
class CaseClosed:
    """The server needs the unit no more for this case."""

    case_no: str


Event = Triggered | Accepted | SelfTestAnswered | Refused | AckOverdue | LinkChanged | CaseHoldExpired | CaseClosed

# --- effects ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewReport:
    kind: Trigger
    report_id: str


@dataclass(frozen=True)
class Show:
    signal: Signal


@dataclass(frozen=True)
class Sound:
    beep: Beep


@dataclass(frozen=True)
class Say:
    prompt: Prompt


@dataclass(frozen=True)
class SayCaseNo:
    case_no: str


@dataclass(frozen=True)
class StartCaseHold:
    report_id: str


Effect = NewReport | Show | Sound | Say | SayCaseNo | StartCaseHold


@dataclass
class ReportingMachine:
    state: AppState = AppState.IDLE
    link_up: bool = False
    current: str | None = None  # the report id being reported, or whose case is open
    case_no: str | None = None
    warned: bool = False  # the driver has been told about the retry for the current report
    log: list[str] = field(default_factory=list, repr=False)  # transitions, for the device log

    def restore(self, state: AppState, report_id: str | None, case_no: str | None = None) -> list[Effect]:
        """Resume after a restart, from what the outbox says."""
        self.state, self.current, self.case_no = state, report_id, case_no
        if state is AppState.IN_CASE and report_id is not None:
            return [Show(Signal.CASE_OPEN), StartCaseHold(report_id)]
        return [Show(self._resting_signal())]

    def handle(self, event: Event) -> list[Effect]:
        before = self.state
        effects = self._handle(event)
        if self.state is not before:
            self.log.append(f"{before} -> {self.state} on {type(event).__name__}")
        return effects

    def _handle(self, event: Event) -> list[Effect]:
        match event:
            case Triggered(kind, report_id):
                return self._on_trigger(kind, report_id)
            case Accepted(report_id, case_no) if report_id == self.current and self.state is AppState.REPORTING:
                self.state, self.case_no = AppState.IN_CASE, case_no
                return [
                    Show(Signal.CASE_OPEN),
                    Sound(Beep.CASE_NUMBER),
                    SayCaseNo(case_no),
                    Say(Prompt.DISPATCHER),
                    StartCaseHold(report_id),
                ]
            case SelfTestAnswered(report_id) if report_id == self.current and self.state is AppState.REPORTING:
                self.state, self.current = AppState.IDLE, None
                return [Sound(Beep.CASE_NUMBER), Show(self._resting_signal())]
            case Refused(report_id, _) if report_id == self.current and self.state is AppState.REPORTING:
                self.state = AppState.FAILED
                return [Show(Signal.FAILED), Sound(Beep.FAILURE), Say(Prompt.FAILED)]
            case AckOverdue(report_id) if report_id == self.current and self.state is AppState.REPORTING:
                if self.warned:
                    return []
                self.warned = True
                return [Show(Signal.RETRYING), Say(Prompt.RETRYING)]
            case LinkChanged(up):
                self.link_up = up
                if self.state is AppState.REPORTING and not up and not self.warned:
                    self.warned = True
                    return [Show(Signal.RETRYING), Say(Prompt.RETRYING)]
                return [Show(self._resting_signal())]
            case CaseHoldExpired(report_id) if report_id == self.current and self.state is AppState.IN_CASE:
                self.state, self.current, self.case_no = AppState.IDLE, None, None
                return [Show(self._resting_signal())]
            case CaseClosed(case_no) if case_no == self.case_no and self.state is AppState.IN_CASE:
                self.state, self.current, self.case_no = AppState.IDLE, None, None
                return [Show(self._resting_signal())]
        return []

    def _on_trigger(self, kind: Trigger, report_id: str) -> list[Effect]:
        if self.state is AppState.REPORTING:
            return []  # already on its way; a second press must not open a second case
        if self.state is AppState.IN_CASE and self.case_no is not None:
            return [SayCaseNo(self.case_no)]  # remind the driver of the open case instead
        self.state, self.current, self.case_no, self.warned = AppState.REPORTING, report_id, None, False
        effects: list[Effect] = [
            NewReport(kind, report_id),
            Sound(Beep.ACCEPTED),
            Show(Signal.REPORTING),
            Say(Prompt.REPORTING),
            Say(Prompt.SAFETY),
        ]
        if not self.link_up:
            self.warned = True
            effects += [Show(Signal.RETRYING), Say(Prompt.RETRYING)]
        return effects

    def _resting_signal(self) -> Signal:
        match self.state:
            case AppState.REPORTING:
                return Signal.RETRYING if self.warned else Signal.REPORTING
            case AppState.IN_CASE:
                return Signal.CASE_OPEN
            case AppState.FAILED:
                return Signal.FAILED
        return Signal.IDLE if self.link_up else Signal.OFFLINE
