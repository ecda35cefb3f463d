"""The call as a kiosk's screen shows it: its phase, who of the police is on the line, and how loud
the dispatcher's voice is on the speaker right now.

The phase comes from two sides: the unit's own peer connection (connecting, connected, lost) and
the server's ``call.status`` (who is listening; nobody after someone was is "on hold"). The level
is measured here, on the frames the speaker plays, as RFC 6465 levels (the same NumPy sum the
senders use), and reported at most ``VOICE_EVERY_S`` and only when its step changes: the browser
redraws the page on every change, and a speaking mouth needs no 50 updates a second. Imported
with the call (it needs PyAV and aiortc), never when the firmware starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import av

from device.hal.screen import VOICE_STEPS, CallPhase, CallView
from runtime.audio_level import audio_level_dbov

VOICE_EVERY_S = 0.25
# dBov at which each bar of the meter lights: speech sits around -30 to -15, a quiet room below -50.
VOICE_THRESHOLDS = (-50, -40, -30, -20)
assert len(VOICE_THRESHOLDS) == VOICE_STEPS

Show = Callable[[CallView | None], None]


def voice_step(dbov: int) -> int:
    return sum(dbov >= threshold for threshold in VOICE_THRESHOLDS)


class Line:
    """One call's state for the screen; ``show`` gets each new view (None when the call is over)."""

    def __init__(self, show: Show) -> None:
        self._show = show
        self._connected = False
        self._lost = False  # connected once, then lost: reconnecting rather than connecting
        self._operators: tuple[str, ...] | None = None  # None: nobody has picked up yet
        self._ended = False
        self._voice = 0
        self._video = False
        self._loudest = -127  # since the last report
        self._reported_at = 0.0
        self._shown: CallView | None = None
        self._update()

    @property
    def view(self) -> CallView:
        if self._ended:
            return CallView(CallPhase.ENDED)
        if not self._connected:
            return CallView(CallPhase.RECONNECTING if self._lost else CallPhase.CONNECTING)
        if self._operators is None:
            return CallView(CallPhase.RINGING)
        if not self._operators:
            return CallView(CallPhase.HOLD)
        return CallView(CallPhase.LIVE, self._operators, self._voice, self._video)

    def connected(self, up: bool) -> None:
        if self._connected and not up:
            self._lost = True
        self._connected = up
        if not up:
            self._voice = 0
        self._update()

    def video(self, on: bool) -> None:
        """Whether the dispatcher's pictures are arriving (their camera is shared)."""
        if on != self._video:
            self._video = on
            self._update()

    def operators(self, names: list[str]) -> None:
        self._operators = tuple(names)
        self._update()

    def voice(self, frame: av.AudioFrame) -> None:
        """One frame of the dispatcher's voice as it goes to the speaker."""
        self._loudest = max(self._loudest, audio_level_dbov(frame))
        now = time.monotonic()
        if now - self._reported_at < VOICE_EVERY_S:
            return
        self._reported_at = now
        self._voice, self._loudest = voice_step(self._loudest), -127
        self._update()

    def ended(self) -> None:
        self._ended = True
        self._update()

    def _update(self) -> None:
        view = self.view
        if view != self._shown:
            self._shown = view
            self._show(view)
