"""What the server refuses, and why, in words for the person at the console.

Code below the API says what went wrong as one of these kinds; only ``server/api/app.py`` knows
which HTTP status each kind is, so a store or a rule never has to think about HTTP. The message is
shown as it is on the console: plain Chinese first, saying what to do, then the English in
parentheses for the logs and the tests.

Exceptions that never reach a person (a signalling detail, an SMS provider's answer, a damaged
boundary file at start-up) stay where they are raised, outside this tree.
"""

from __future__ import annotations


class DomainError(Exception):
    """A request the server understood and refuses; ``str()`` is the message for the console."""


class NotFound(DomainError):
    """Nothing of the kind, or nothing this operator may see: someone else's case is reported as
    absent, so an id does not tell whether it exists."""


class NoSuchCase(NotFound):
    """The one refusal nearly every case route can give, worded once."""

    def __init__(self) -> None:
        super().__init__("案件不存在，请刷新队列 (no such case)")


class Conflict(DomainError):
    """The thing exists but its state does not allow this now (a closed case, a retired device)."""


class Invalid(DomainError):
    """What was sent breaks a rule the request's schema cannot express."""


class Forbidden(DomainError):
    """The operator is known but their role or their units do not allow this."""


class Unauthenticated(DomainError):
    """No session, or a wrong password or token: the console goes to its login page."""


class Throttled(DomainError):
    """Too many failed attempts; the same request will be refused for a while, even if right."""


class Unavailable(DomainError):
    """Something the server needs (the broker, the unit) is out of reach; trying again may work."""


class TimedOut(Unavailable):
    """The unit was asked and did not answer in time; its answer, if it comes, is still kept."""
