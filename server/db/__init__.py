"""The database: typed SQLAlchemy 2 models, engines and sessions, migrations."""

from server.db.base import Base, fold, new_id, utcnow
from server.db.oauth import OAuthClient, OAuthClientKind, OAuthToken
from server.db.people import Credential, CredentialState, RecordStatus, User, UserGrade, UserRole
from server.db.records import AuditEvent, ImportRowResult, ImportRun
from server.db.roster import (
    AcademicSession,
    Course,
    Enrollment,
    Group,
    GroupMember,
    Org,
    SchoolClass,
    class_terms,
)
from server.db.signin import (
    ActivationToken,
    AuthorizationCode,
    Badge,
    BrowserSession,
    ClientSigningPreference,
    LoginThrottle,
    SigningKey,
)
from server.db.tenancy import (
    Connection,
    ConnectionKind,
    ConnectionToken,
    StaffAccount,
    StaffRole,
    StaffToken,
    Tenant,
)

__all__ = [
    "AcademicSession",
    "ActivationToken",
    "AuditEvent",
    "AuthorizationCode",
    "Badge",
    "Base",
    "BrowserSession",
    "ClientSigningPreference",
    "Connection",
    "ConnectionKind",
    "ConnectionToken",
    "Course",
    "Credential",
    "CredentialState",
    "Enrollment",
    "Group",
    "GroupMember",
    "ImportRowResult",
    "ImportRun",
    "LoginThrottle",
    "OAuthClient",
    "OAuthClientKind",
    "OAuthToken",
    "Org",
    "RecordStatus",
    "SchoolClass",
    "SigningKey",
    "StaffAccount",
    "StaffRole",
    "StaffToken",
    "Tenant",
    "User",
    "UserGrade",
    "UserRole",
    "class_terms",
    "fold",
    "new_id",
    "utcnow",
]
