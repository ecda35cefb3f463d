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
    """A request the server understood and refuses; ``str()`` is the message for the console.

    ``code`` is for programs (a page that places the message next to a field, a test): the kind's
    own, or a more precise one given where the refusal is made, and never reworded once published.
    ``field`` names the request's field the refusal is about, where there is one."""

    code = "refused"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.field = field


class NotFound(DomainError):
    """Nothing of the kind, or nothing this operator may see: someone else's case is reported as
    absent, so an id does not tell whether it exists."""

    code = "not_found"


class NoSuchCase(NotFound):
    """The one refusal nearly every case route can give, worded once."""

    code = "no_such_case"

    def __init__(self) -> None:
        super().__init__("案件不存在，请刷新队列 (no such case)")


class Conflict(DomainError):
    """The thing exists but its state does not allow this now (a closed case, a retired device)."""

    code = "conflict"


class Invalid(DomainError):
    """What was sent breaks a rule the request's schema cannot express."""

    code = "invalid"


class Forbidden(DomainError):
    """The operator is known but their role or their units do not allow this."""

    code = "forbidden"


class Unauthenticated(DomainError):
    """No session, or a wrong password or token: the console goes to its login page."""

    code = "unauthenticated"


class Throttled(DomainError):
    """Too many failed attempts; the same request will be refused for a while, even if right."""

    code = "throttled"


class Unavailable(DomainError):
    """Something the server needs (the broker, the unit) is out of reach; trying again may work."""

    code = "unavailable"


class TimedOut(Unavailable):
    """The unit was asked and did not answer in time; its answer, if it comes, is still kept."""

    code = "timed_out"
