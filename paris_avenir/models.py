"""Every table of the product, imported in one place for Alembic and the tests."""

from paris_avenir.aid_requests.models import (
    Aid,
    AidCode,
    AidRequest,
    AidRequestEvent,
    RequestStatus,
    aid_request_document,
)
from paris_avenir.appointments.models import (
    Appointment,
    AppointmentKind,
    AppointmentPlace,
    AppointmentStatus,
    AvailabilityException,
    WeeklyAvailability,
)
from paris_avenir.audit.models import AuditEvent
from paris_avenir.auth.models import AuthMethod, LoginLink, OidcFlow, SignInAttempt, UserSession
from paris_avenir.db import Base
from paris_avenir.documents.models import Document, DocumentKind
from paris_avenir.kit.settings_store import PlatformSetting
from paris_avenir.messaging.models import (
    Message,
    MessageThread,
    OutboxMessage,
    OutboxStatus,
    OutboxStatusEvent,
    ProviderEvent,
    message_attachment,
)
from paris_avenir.outreach.models import (
    OutreachAttempt,
    OutreachReason,
    OutreachResponse,
)
from paris_avenir.staff.models import (
    CaseloadAssignment,
    CounterSession,
    StaffRole,
    StaffTask,
    StaffUser,
    TaskKind,
    TaskOutcome,
    Team,
)
from paris_avenir.youths.import_models import ImportPreview
from paris_avenir.youths.models import (
    Channel,
    ContactVerification,
    EmploymentSituation,
    FollowUpNote,
    HousingSituation,
    Youth,
)

__all__ = [
    "Aid",
    "AidCode",
    "AidRequest",
    "AidRequestEvent",
    "Appointment",
    "AppointmentKind",
    "AppointmentPlace",
    "AppointmentStatus",
    "AuditEvent",
    "AuthMethod",
    "AvailabilityException",
    "Base",
    "CaseloadAssignment",
    "Channel",
    "ContactVerification",
    "CounterSession",
    "Document",
    "DocumentKind",
    "EmploymentSituation",
    "FollowUpNote",
    "HousingSituation",
    "ImportPreview",
    "LoginLink",
    "Message",
    "MessageThread",
    "OidcFlow",
    "OutboxMessage",
    "OutboxStatus",
    "OutboxStatusEvent",
    "OutreachAttempt",
    "OutreachReason",
    "OutreachResponse",
    "PlatformSetting",
    "ProviderEvent",
    "RequestStatus",
    "SignInAttempt",
    "StaffRole",
    "StaffTask",
    "StaffUser",
    "TaskKind",
    "TaskOutcome",
    "Team",
    "UserSession",
    "WeeklyAvailability",
    "Youth",
    "aid_request_document",
    "message_attachment",
]
