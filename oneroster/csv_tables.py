"""OneRoster CSV 1.1 and 1.2 (1.2.1 corrections): the files' headers, manifest values and cell
syntax (lists, booleans, made-up role sourcedIds) shared by the reader and the writer.

Headers, in spec order (OneRoster 1.1 CSV Tables §2, OneRoster 1.2 CSV Tables §3 with the 1.2.1
corrections). Both versions share ``status`` (``active`` | ``tobedeleted``, blank in bulk
files) and ``dateLastModified`` (blank in bulk files) after ``sourcedId``::

    orgs.csv              sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId
    academicSessions.csv  ...,title,type,startDate,endDate,parentSourcedId,schoolYear
    courses.csv           ...,schoolYearSourcedId,title,courseCode,grades,orgSourcedId,subjects,
                          subjectCodes
    classes.csv           ...,title,grades,courseSourcedId,classCode,classType,location,
                          schoolSourcedId,termSourcedIds,subjects,subjectCodes,periods
    enrollments.csv       ...,classSourcedId,schoolSourcedId,userSourcedId,role,primary,
                          beginDate,endDate
    demographics.csv      ...,birthDate,sex,americanIndianOrAlaskaNative,asian,
                          blackOrAfricanAmerican,nativeHawaiianOrOtherPacificIslander,white,
                          demographicRaceTwoOrMoreRaces,hispanicOrLatinoEthnicity,
                          countryOfBirthCode,stateOfBirthAbbreviation,cityOfBirth,
                          publicSchoolResidenceStatus
    users.csv (1.1)       ...,enabledUser,orgSourcedIds,role,username,userIds,givenName,
                          familyName,middleName,identifier,email,sms,phone,agentSourcedIds,
                          grades,password
    users.csv (1.2)       ...,enabledUser,username,userIds,givenName,familyName,middleName,
                          identifier,email,sms,phone,agentSourcedIds,grades,password,
                          userMasterIdentifier,preferredGivenName,preferredMiddleName,
                          preferredFamilyName,primaryOrgSourcedId,pronouns
    roles.csv (1.2)       ...,userSourcedId,roleType,role,beginDate,endDate,orgSourcedId,
                          userProfileSourcedId
    userProfiles.csv (1.2) ...,userSourcedId,profileType,vendorId,applicationId,description,
                          credentialType,username,password

``manifest.csv`` has the header ``propertyName,value`` and the properties
``manifest.version`` (``1.0``), ``oneroster.version`` (``1.1`` or ``1.2``), ``file.<name>``
(``absent`` | ``bulk`` | ``delta``) for every file, and ``source.systemName`` /
``source.systemCode`` (1.1 drafts wrote ``source.appName``, accepted too).

Columns named ``metadata.*`` may follow the spec columns (extensions); they are kept.
"""

from __future__ import annotations

COMMON = ("sourcedId", "status", "dateLastModified")

_SHARED: dict[str, tuple[str, ...]] = {
    "orgs.csv": (*COMMON, "name", "type", "identifier", "parentSourcedId"),
    "academicSessions.csv": (
        *COMMON,
        "title",
        "type",
        "startDate",
        "endDate",
        "parentSourcedId",
        "schoolYear",
    ),
    "courses.csv": (
        *COMMON,
        "schoolYearSourcedId",
        "title",
        "courseCode",
        "grades",
        "orgSourcedId",
        "subjects",
        "subjectCodes",
    ),
    "classes.csv": (
        *COMMON,
        "title",
        "grades",
        "courseSourcedId",
        "classCode",
        "classType",
        "location",
        "schoolSourcedId",
        "termSourcedIds",
        "subjects",
        "subjectCodes",
        "periods",
    ),
    "enrollments.csv": (
        *COMMON,
        "classSourcedId",
        "schoolSourcedId",
        "userSourcedId",
        "role",
        "primary",
        "beginDate",
        "endDate",
    ),
    "demographics.csv": (
        *COMMON,
        "birthDate",
        "sex",
        "americanIndianOrAlaskaNative",
        "asian",
        "blackOrAfricanAmerican",
        "nativeHawaiianOrOtherPacificIslander",
        "white",
        "demographicRaceTwoOrMoreRaces",
        "hispanicOrLatinoEthnicity",
        "countryOfBirthCode",
        "stateOfBirthAbbreviation",
        "cityOfBirth",
        "publicSchoolResidenceStatus",
    ),
}

HEADERS: dict[str, dict[str, tuple[str, ...]]] = {
    "1.1": {
        **_SHARED,
        "users.csv": (
            *COMMON,
            "enabledUser",
            "orgSourcedIds",
            "role",
            "username",
            "userIds",
            "givenName",
            "familyName",
            "middleName",
            "identifier",
            "email",
            "sms",
            "phone",
            "agentSourcedIds",
            "grades",
            "password",
        ),
    },
    "1.2": {
        **_SHARED,
        "users.csv": (
            *COMMON,
            "enabledUser",
            "username",
            "userIds",
            "givenName",
            "familyName",
            "middleName",
            "identifier",
            "email",
            "sms",
            "phone",
            "agentSourcedIds",
            "grades",
            "password",
            "userMasterIdentifier",
            "preferredGivenName",
            "preferredMiddleName",
            "preferredFamilyName",
            "primaryOrgSourcedId",
            "pronouns",
        ),
        "roles.csv": (
            *COMMON,
            "userSourcedId",
            "roleType",
            "role",
            "beginDate",
            "endDate",
            "orgSourcedId",
            "userProfileSourcedId",
        ),
        "userProfiles.csv": (
            *COMMON,
            "userSourcedId",
            "profileType",
            "vendorId",
            "applicationId",
            "description",
            "credentialType",
            "username",
            "password",
        ),
    },
}

# Files of the other OneRoster services (gradebook, resources) that a manifest may list; they
# are accepted and ignored.
OTHER_FILES = (
    "categories.csv",
    "classResources.csv",
    "courseResources.csv",
    "lineItems.csv",
    "resources.csv",
    "results.csv",
    "userResources.csv",
    "scoreScales.csv",
    "lineItemLearningObjectiveIds.csv",
    "lineItemScoreScales.csv",
    "resultLearningObjectiveIds.csv",
    "resultScoreScales.csv",
)

# Columns a file needs before any row can be read; a missing one is F002. The others may be
# left out of a file by a lenient producer (each such column is reported as a warning).
KEY_COLUMNS: dict[str, tuple[str, ...]] = {
    "orgs.csv": ("sourcedId", "name", "type"),
    "academicSessions.csv": ("sourcedId", "title", "type", "startDate", "endDate"),
    "courses.csv": ("sourcedId", "title"),
    "classes.csv": ("sourcedId", "title", "schoolSourcedId"),
    "enrollments.csv": ("sourcedId", "classSourcedId", "userSourcedId", "role"),
    "demographics.csv": ("sourcedId",),
    "users.csv": ("sourcedId", "givenName", "familyName"),
    "roles.csv": ("sourcedId", "userSourcedId", "role", "orgSourcedId"),
    "userProfiles.csv": ("sourcedId", "userSourcedId"),
}

# Known header drift: what producers write -> the spec name.
HEADER_ALIASES = {
    "userProfile": "userProfileSourcedId",
    "enabledUserV1P1": "enabledUser",
    "orgSourcedId": "orgSourcedIds",  # users.csv 1.1 only, see _canonical_headers
}
DROPPED_HEADERS = {"resourceSourcedIds"}

MODES = ("absent", "bulk", "delta")
MANIFEST_VERSION = "1.0"


def role_sourced_id(user: str, org: str, role: str) -> str:
    """A stable sourcedId for a role that came without one (SCIM, school CSV, 1.1 users.csv).

    Made of the user's and org's sourcedIds and the role joined by ``.``, so it stays inside
    the OneRoster GUID character set (``0-9 A-Z a-z . - _ / @``) those already use.
    """
    return f"{user}.{org}.{role}"


def iter_list(cell: str) -> list[str]:
    """A OneRoster list cell (``"a,b"``; some producers quote items) as clean items."""
    if "," not in cell and '"' not in cell:  # one item: most cells, and the fast way
        item = cell.strip()
        return [item] if item else []
    return [item.strip().strip('"') for item in cell.split(",") if item.strip().strip('"')]


def parse_boolean(cell: str) -> bool | None:
    """OneRoster string booleans: ``true`` / ``false`` (any case); blank is None.

    :raises ValueError: anything else.
    """
    text = cell.strip().casefold()
    if not text:
        return None
    if text in ("true", "false"):
        return text == "true"
    raise ValueError(cell)
