"""The objects a running server worker shares between its API routes and its MQTT intake."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from server.calls.manager import CallManager
from server.calls.participants import PhoneCalls
from server.calls.uploads import UploadReceiver
from server.cases import CaseStore
from server.casework.determination import Determinations
from server.casework.store import CaseWork
from server.config import ServerConfig
from server.delivery.outbox import SmsOutbox
from server.devices import DeviceStore
from server.evidence.copies import MaskedCopies
from server.insurers.api_access import InsurerApi
from server.insurers.claims import Claims
from server.insurers.webhooks import WebhookOutbox
from server.live_feed import CaseHub
from server.login_throttle import SharedLoginThrottle
from server.outbound import Outbound
from server.phones.photos import PhotoUploads
from server.phones.reports import PhoneReports
from server.plates import Plates
from server.portal.access import PortalAccess
from server.portal.review_desk import ReviewDesk
from server.portal.reviews import Reviews
from server.portal.views import PortalViews
from server.rollouts import Rollouts
from server.users import UserStore


@dataclass(frozen=True)
class ServerState:
    cfg: ServerConfig
    cases: CaseStore
    users: UserStore
    devices: DeviceStore
    hub: CaseHub
    work: CaseWork
    determinations: Determinations
    sms: SmsOutbox
    plates: Plates
    outbound: Outbound  # to a device's cmd topic, and a case's new state to every console
    portal: PortalAccess  # how a party gets in: their link, a code by SMS, their session
    portal_views: PortalViews  # what a party sees of their case
    reviews: Reviews  # a party's review request (复核)
    review_desk: ReviewDesk  # the staff's side of reviews
    phone_reports: PhoneReports  # 视频报警 from a phone with no unit
    photos: PhotoUploads  # a party's photos, uploaded in resumable chunks
    webhooks: WebhookOutbox  # events to the insurers: the sender, its signed links, the operators' view
    insurer_api: InsurerApi  # who calls the insurers' API, its rate, the cases it may see, the call log
    claims: Claims  # one-key claims (一键理赔): the party's request, the insurer's updates
    rollouts: Rollouts  # firmware releases offered to groups of units, and each unit's progress
    receipt_token: str | None = None  # what the SMS provider presents with delivery receipts
    calls: CallManager | None = None  # on the worker that takes the live calls
    uploads: UploadReceiver | None = None  # stills and clips, on the same worker
    phone_calls: PhoneCalls | None = None  # the parties' phones in the calls, on the same worker

    @cached_property
    def throttle(self) -> SharedLoginThrottle:
        """Failed console logins, counted in the database that every worker shares."""
        return SharedLoginThrottle(self.cases.sessions)

    @cached_property
    def masked(self) -> MaskedCopies:
        """Masked copies of evidence for the insurers' API and the parties' page
        (``masked.masked_copy(evidence_id)``); the models load at the first copy, not at start-up."""
        return MaskedCopies(self.cases.sessions, self.cfg.evidence_dir)
