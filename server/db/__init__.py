"""The database: typed SQLAlchemy 2 models, engines and sessions, migrations."""

from server.db.base import Base, fold, new_id, new_record_id, utcnow
from server.db.oauth import OAuthClient, OAuthClientKind, OAuthToken
from server.db.oauth1 import OAuth1Nonce, OAuth1Secret
from server.db.people import (
    Credential,
    CredentialState,
    RecordStatus,
    User,
    UserGrade,
    UserRole,
    not_deleted,
)
from server.db.purges import PurgeRun
from server.db.records import AuditAmendment, AuditEvent, ImportRowResult, ImportRun
from server.db.roster import (
    AcademicSession,
    Course,
    Enrollment,
    Group,
    GroupMember,
    Org,
    RosterChange,
    RosterVersion,
    SchoolClass,
    class_terms,
)
from server.db.scim import ScimValue
from server.db.signin import (
    ActivationToken,
    AuthorizationCode,
    Badge,
    BrowserSession,
    ClientSigningPreference,
    LoginThrottle,
    SigningKey,
)
from server.db.staffwork import AccountRequest, FormSubmission, Job
from server.db.tenancy import (
    Connection,
    ConnectionKind,
    ConnectionToken,
    ProviderFailure,
    StaffAccount,
    StaffRole,
    StaffToken,
    Tenant,
)

__all__ = [
    "AcademicSession",
    "AccountRequest",
    "ActivationToken",
    "AuditAmendment",
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
    "FormSubmission",
    "Group",
    "GroupMember",
    "ImportRowResult",
    "ImportRun",
    "Job",
    "LoginThrottle",
    "OAuth1Nonce",
    "OAuth1Secret",
    "OAuthClient",
    "OAuthClientKind",
    "OAuthToken",
    "Org",
    "ProviderFailure",
    "PurgeRun",
    "RecordStatus",
    "RosterChange",
    "RosterVersion",
    "SchoolClass",
    "ScimValue",
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
    "new_record_id",
    "not_deleted",
    "utcnow",
]
