"""A live call's state, as the media worker sees the unit's side of it.

    connecting    ──connected──▶ live
    connecting    ──connection_lost──▶ reconnecting
    connecting    ──scene_sample──▶ degraded
    live          ──connection_lost, media_stalled──▶ reconnecting
    reconnecting  ──connected, media_resumed──▶ live
    reconnecting  ──scene_sample──▶ degraded
    degraded      ──connected──▶ live
    any but ended ──end──▶ ended

Every other event a state takes leaves it as it is. A degraded call (stills and sound over MQTT,
no video path) stays degraded when an attempt at a video connection fails, and a live one ignores
scene samples: they only fill in while there is no video. News of the unit's connection or media
that arrives after the end (a closing peer connection reports itself closed) changes nothing; an
ended call takes no offers, so no scene sample and no second end reach it. The values are the
database's and the console feed's, unchanged.
"""

from __future__ import annotations

from enum import StrEnum

from server.lifecycles.machine import Lifecycle


class CallState(StrEnum):
    CONNECTING = "connecting"  # offered, no media connection yet
    LIVE = "live"
    RECONNECTING = "reconnecting"  # the unit's media stopped; it has the grace time to come back
    DEGRADED = "degraded"  # no video path: stills and sound over MQTT; the grace time runs per sample
    ENDED = "ended"


class CallEvent(StrEnum):
    CONNECTED = "connected"  # the unit's peer connection connected
    CONNECTION_LOST = "connection_lost"  # it disconnected, failed or closed
    MEDIA_STALLED = "media_stalled"  # the unit's sound stopped arriving, whatever ICE thinks
    MEDIA_RESUMED = "media_resumed"  # its sound arrives again over a connected peer connection
    SCENE_SAMPLE = "scene_sample"  # a still and sound came over MQTT instead of video
    END = "end"  # hung up, ended by a dispatcher, or by the server (grace time, longest call)


_CONNECTING, _LIVE, _RECONNECTING, _DEGRADED, _ENDED = CallState


CALL = Lifecycle(
    name="call",
    states=CallState,
    events=CallEvent,
    initial=CallState.CONNECTING,
    moves={
        (_CONNECTING, CallEvent.CONNECTED): _LIVE,
        (_LIVE, CallEvent.CONNECTED): _LIVE,
        (_RECONNECTING, CallEvent.CONNECTED): _LIVE,
        (_DEGRADED, CallEvent.CONNECTED): _LIVE,
        (_ENDED, CallEvent.CONNECTED): _ENDED,
        (_CONNECTING, CallEvent.CONNECTION_LOST): _RECONNECTING,
        (_LIVE, CallEvent.CONNECTION_LOST): _RECONNECTING,
        (_RECONNECTING, CallEvent.CONNECTION_LOST): _RECONNECTING,
        (_DEGRADED, CallEvent.CONNECTION_LOST): _DEGRADED,
        (_ENDED, CallEvent.CONNECTION_LOST): _ENDED,
        (_CONNECTING, CallEvent.MEDIA_STALLED): _CONNECTING,
        (_LIVE, CallEvent.MEDIA_STALLED): _RECONNECTING,
        (_RECONNECTING, CallEvent.MEDIA_STALLED): _RECONNECTING,
        (_DEGRADED, CallEvent.MEDIA_STALLED): _DEGRADED,
        (_ENDED, CallEvent.MEDIA_STALLED): _ENDED,
        (_CONNECTING, CallEvent.MEDIA_RESUMED): _CONNECTING,
        (_LIVE, CallEvent.MEDIA_RESUMED): _LIVE,
        (_RECONNECTING, CallEvent.MEDIA_RESUMED): _LIVE,
        (_DEGRADED, CallEvent.MEDIA_RESUMED): _DEGRADED,
        (_ENDED, CallEvent.MEDIA_RESUMED): _ENDED,
        (_CONNECTING, CallEvent.SCENE_SAMPLE): _DEGRADED,
        (_LIVE, CallEvent.SCENE_SAMPLE): _LIVE,
        (_RECONNECTING, CallEvent.SCENE_SAMPLE): _DEGRADED,
        (_DEGRADED, CallEvent.SCENE_SAMPLE): _DEGRADED,
        (_CONNECTING, CallEvent.END): _ENDED,
        (_LIVE, CallEvent.END): _ENDED,
        (_RECONNECTING, CallEvent.END): _ENDED,
        (_DEGRADED, CallEvent.END): _ENDED,
    },
    labels={
        CallState.CONNECTING: "连接中 connecting",
        CallState.LIVE: "通话中 live",
        CallState.RECONNECTING: "重连中 reconnecting",
        CallState.DEGRADED: "降级 degraded",
        CallState.ENDED: "已结束 ended",
    },
)
