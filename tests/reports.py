"""Reports as a device would send them, for tests that play the device's part on the wire."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from protocol.ids import new_report_id
from protocol.messages import FixQuality, Health, PartState, Position, Report, Site, TrackPoint, Trigger, Vehicle

WUHUA = (102.7095, 25.0440)  # WGS-84, near 翠湖, 五华区 530102
GUANDU = (102.7217, 25.0159)  # WGS-84, 昆明站, 官渡区 530111
ANNING = (102.4780, 24.9190)  # WGS-84, 安宁市: Kunming, outside the pilot districts


def health() -> Health:
    return Health(
        camera=PartState.OK, gnss=PartState.OK, audio=PartState.OK, storage_free_mb=5000, firmware="0.1.0", uptime_s=60
    )


def in_car_report(
    device_id: str = "car-0001",
    where: tuple[float, float] | None = WUHUA,
    *,
    trusted: bool = True,
    trigger: Trigger = Trigger.BUTTON,
    report_id: str | None = None,
) -> Report:
    now = datetime.now(UTC)
    position = None
    track: list[TrackPoint] = []
    if where is not None:
        lon, lat = where
        position = Position(
            time=now,
            lat=lat,
            lon=lon,
            alt_m=1890.0,
            mode=3 if trusted else 2,
            quality=FixQuality.GPS,
            sats=12 if trusted else 3,
            hdop=0.9 if trusted else 8.0,
            speed_mps=0.0,
            heading_deg=90.0,
            trusted=trusted,
        )
        track = [
            TrackPoint(time=now - timedelta(seconds=s), lat=lat - s * 1e-5, lon=lon, speed_mps=5.0, heading_deg=0.0)
            for s in range(5, 0, -1)
        ]
    return Report(
        report_id=report_id or new_report_id(),
        device_id=device_id,
        device_kind="in-car",
        trigger=trigger,
        triggered_at=now,
        position=position,
        track=track,
        vehicle=Vehicle(plate="云A5H821", vin="LSVAM4187C2184521"),
        health=health(),
    )


def kiosk_report(device_id: str = "kiosk-0001", site: tuple[float, float] = GUANDU) -> Report:
    return Report(
        report_id=new_report_id(),
        device_id=device_id,
        device_kind="kiosk",
        trigger=Trigger.KIOSK,
        triggered_at=datetime.now(UTC),
        position=None,
        site=Site(name="昆明站报警亭", lon=site[0], lat=site[1]),
        health=health(),
    )
