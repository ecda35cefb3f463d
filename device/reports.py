"""Building the messages a device sends from what its hardware knows right now."""

from __future__ import annotations

from datetime import datetime

from device.config import DeviceConfig
from protocol.messages import Health, Heartbeat, Position, Report, Site, TrackPoint, Trigger, Vehicle

MAX_TRACK_POINTS = 60


def build_report(
    cfg: DeviceConfig,
    report_id: str,
    kind: Trigger,
    triggered_at: datetime,
    position: Position | None,
    track: list[TrackPoint],
    health: Health,
) -> Report:
    return Report(
        report_id=report_id,
        device_id=cfg.device.id,
        device_kind=cfg.device.kind,
        trigger=kind,
        triggered_at=triggered_at,
        position=position,
        track=track[-MAX_TRACK_POINTS:],
        vehicle=vehicle_of(cfg),
        site=site_of(cfg),
        health=health,
    )


def vehicle_of(cfg: DeviceConfig) -> Vehicle | None:
    return Vehicle(plate=cfg.vehicle.plate, vin=cfg.vehicle.vin) if cfg.vehicle else None


def site_of(cfg: DeviceConfig) -> Site | None:
    return Site(name=cfg.site.name, lat=cfg.site.lat, lon=cfg.site.lon, address=cfg.site.address) if cfg.site else None


def build_heartbeat(
    cfg: DeviceConfig, at: datetime, app_state: str, pending: int, position: Position | None, health: Health
) -> Heartbeat:
    return Heartbeat(
        at=at,
        device_kind=cfg.device.kind,
        app_state=app_state,
        outbox_pending=pending,
        position=position,
        health=health,
    )
