"""All models, imported here so that metadata and Alembic see every table."""

from .api_clients import API_SCOPES, ApiCaller, ApiClient, ApiIdempotencyKey, ApiRecordKey, ApiToken
from .applications import (
    EDITABLE_STATUSES,
    LIVE_STATUSES,
    Application,
    ApplicationItem,
    ApplicationStatus,
    Attachment,
    AttachmentKind,
    AuditVerdict,
)
from .audit import AuditLog
from .base import LabeledEnum, utcnow
from .calendar import CalendarDay, CalendarYear, DayKind, ScheduleSource
from .certificates import Certificate, CertificateCounter, CertificateVersion, RenderState
from .changes import ChangeItem, ChangeKind, ChangeOrigin, ChangeRequest, ChangeStatus
from .cylinders import (
    Cylinder,
    CylinderChangeCounter,
    CylinderDeparture,
    CylinderStatus,
    CylinderStatusChange,
    TagBinding,
    TagType,
)
from .documents import CorrectionRound, DocumentKind, LicensingDocument
from .imports import ImportFailedRow, ImportJob, ImportStatus
from .photo_readings import PhotoReading, ReadingVerdict
from .records import FillingRecord, InspectionRecord, TraceEvent
from .reference import District, Medium, Variety
from .stats import RegistrationStat, StatRefresh, StepDurationStat, ViolationStat
from .throttle import AuthThrottle
from .units import Unit, UnitKind
from .users import CITY_ROLES, DISTRICT_ROLES, Role, User, UserSession

__all__ = [
    "API_SCOPES",
    "CITY_ROLES",
    "DISTRICT_ROLES",
    "EDITABLE_STATUSES",
    "LIVE_STATUSES",
    "ApiCaller",
    "ApiClient",
    "ApiIdempotencyKey",
    "ApiRecordKey",
    "ApiToken",
    "Application",
    "ApplicationItem",
    "ApplicationStatus",
    "Attachment",
    "AttachmentKind",
    "AuditLog",
    "AuditVerdict",
    "AuthThrottle",
    "CalendarDay",
    "CalendarYear",
    "Certificate",
    "CertificateCounter",
    "CertificateVersion",
    "ChangeItem",
    "ChangeKind",
    "ChangeOrigin",
    "ChangeRequest",
    "ChangeStatus",
    "CorrectionRound",
    "Cylinder",
    "CylinderChangeCounter",
    "CylinderDeparture",
    "CylinderStatus",
    "CylinderStatusChange",
    "DayKind",
    "District",
    "DocumentKind",
    "FillingRecord",
    "ImportFailedRow",
    "ImportJob",
    "ImportStatus",
    "InspectionRecord",
    "LabeledEnum",
    "LicensingDocument",
    "Medium",
    "PhotoReading",
    "ReadingVerdict",
    "RegistrationStat",
    "RenderState",
    "Role",
    "ScheduleSource",
    "StatRefresh",
    "StepDurationStat",
    "TagBinding",
    "TagType",
    "TraceEvent",
    "Unit",
    "UnitKind",
    "User",
    "UserSession",
    "Variety",
    "ViolationStat",
    "utcnow",
]
