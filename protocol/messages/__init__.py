"""Message models for every topic in ``protocol.topics``, version 1, one module per topic.

Devices and server import the models from here; the modules behind it are how they are kept.
"""

from protocol.messages.base import (
    MAX_PAYLOAD_BYTES,
    VERSION,
    DeviceId,
    Heading,
    Latitude,
    Longitude,
    Message,
    ReportId,
    ShortText,
    Speed,
    Versioned,
)
from protocol.messages.call import SCENE_CONTENT_TYPES, SCENE_MAX_BYTES, CallId, CallSignal, SceneSample, Sdp
from protocol.messages.codec import decode, encode, utc_iso
from protocol.messages.command import Command
from protocol.messages.device_state import (
    DeviceKind,
    Health,
    Heartbeat,
    PartState,
    Presence,
    ReleaseKind,
    ReleaseVersion,
    UpdateStatus,
    UpdateStep,
)
from protocol.messages.evidence import (
    CHUNK_BYTES,
    CONTENT_TYPES,
    MAX_UPLOAD_BYTES,
    PRETRIGGER_MAX_S,
    CaseNo,
    ContentType,
    EvidenceKind,
    Sha256,
    Upload,
    UploadId,
)
from protocol.messages.plate_reads import MAX_PLATE_READS, PLATE_CROP_MAX_BYTES, PlateReadOut, PlateReads
from protocol.messages.position import FixQuality, Position, TrackPoint
from protocol.messages.report import Ack, Plate, Report, Site, Trigger, Unit, Vehicle, Vin
from protocol.messages.schemas import SCHEMAS
from protocol.messages.selftest import CheckStatus, SelfTest, SelfTestCheck

__all__ = [
    "CHUNK_BYTES",
    "CONTENT_TYPES",
    "MAX_PAYLOAD_BYTES",
    "MAX_PLATE_READS",
    "MAX_UPLOAD_BYTES",
    "PLATE_CROP_MAX_BYTES",
    "PRETRIGGER_MAX_S",
    "SCENE_CONTENT_TYPES",
    "SCENE_MAX_BYTES",
    "SCHEMAS",
    "VERSION",
    "Ack",
    "CallId",
    "CallSignal",
    "CaseNo",
    "CheckStatus",
    "Command",
    "ContentType",
    "DeviceId",
    "DeviceKind",
    "EvidenceKind",
    "FixQuality",
    "Heading",
    "Health",
    "Heartbeat",
    "Latitude",
    "Longitude",
    "Message",
    "PartState",
    "Plate",
    "PlateReadOut",
    "PlateReads",
    "Position",
    "Presence",
    "ReleaseKind",
    "ReleaseVersion",
    "Report",
    "ReportId",
    "SceneSample",
    "Sdp",
    "SelfTest",
    "SelfTestCheck",
    "Sha256",
    "ShortText",
    "Site",
    "Speed",
    "TrackPoint",
    "Trigger",
    "Unit",
    "UpdateStatus",
    "UpdateStep",
    "Upload",
    "UploadId",
    "Vehicle",
    "Versioned",
    "Vin",
    "decode",
    "encode",
    "utc_iso",
]
