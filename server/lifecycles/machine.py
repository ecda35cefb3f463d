"""A lifecycle as a table: (state, event) -> next state; a pair not in the table is an illegal move.

A table rather than code per state, so that what the server enforces and what the pages are told
(``as_json``) are the same data and cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar

S = TypeVar("S", bound=StrEnum)
E = TypeVar("E", bound=StrEnum)


class IllegalMove(ValueError):
    """An event the state does not take. The callers check ``allows`` first and refuse with their
    own message, so reaching this is a bug, named as precisely as possible."""

    def __init__(self, lifecycle: str, state: str, event: str) -> None:
        super().__init__(f"illegal {lifecycle} move: {event} while {state}")
        self.lifecycle = lifecycle
        self.state = state
        self.event = event


@dataclass(frozen=True)
class Lifecycle(Generic[S, E]):
    name: str
    states: type[S]
    events: type[E]
    initial: S
    moves: Mapping[tuple[S, E], S]
    labels: Mapping[S, str]  # Chinese first, English after, as the console shows it
    next_steps: Mapping[S, str] = field(default_factory=dict)  # what happens next, for the parties

    def __post_init__(self) -> None:
        unlabelled = [s for s in self.states if s not in self.labels]
        if unlabelled:
            raise ValueError(f"{self.name}: no label for {unlabelled}")
        if self.next_steps and set(self.next_steps) != set(self.states):
            raise ValueError(f"{self.name}: every state or none says what happens next")

    def allows(self, state: str, event: E) -> bool:
        return (self.states(state), event) in self.moves

    def after(self, state: str, event: E) -> S:
        """The state ``event`` leads to from ``state`` (which may be the database's plain string)."""
        current = self.states(state)
        try:
            return self.moves[current, event]
        except KeyError:
            raise IllegalMove(self.name, current, event) from None

    def as_json(self) -> dict[str, Any]:
        """What the pages read: the values by name (so scripts carry no copies of them), and per
        state its label, what happens next if known, and where each event it takes leads."""
        states: dict[str, Any] = {}
        for state in self.states:
            entry: dict[str, Any] = {"label": self.labels[state]}
            if self.next_steps:
                entry["next"] = self.next_steps[state]
            entry["moves"] = {e.value: to.value for (start, e), to in self.moves.items() if start is state}
            states[state.value] = entry
        return {
            "initial": self.initial.value,
            "values": {s.name: s.value for s in self.states},
            "events": {e.name: e.value for e in self.events},
            "states": states,
        }
