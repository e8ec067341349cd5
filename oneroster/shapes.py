"""The OneRoster 1.1 and 1.2 REST objects' shapes: the keys of each kind of object per
version (the 1.1 REST binding, the 1.2 Rostering OpenAPI's ``*DType`` schemas) and the role
vocabularies of each version. :mod:`oneroster.render` fills them; selection (``fields=``) and
the OpenAPI document read them.
"""

from __future__ import annotations

from server.domain.vocabulary import ENROLLMENT_ROLES_1P2

V1P1 = "v1p1"
V1P2 = "v1p2"

ROLES_1P1 = (
    "administrator",
    "aide",
    "guardian",
    "parent",
    "proctor",
    "relative",
    "student",
    "teacher",
)
ROLES_1P2 = (
    "aide",
    "counselor",
    "districtAdministrator",
    "guardian",
    "parent",
    "principal",
    "proctor",
    "relative",
    "siteAdministrator",
    "student",
    "systemAdministrator",
    "teacher",
)
ENROLLMENT_ROLES = ENROLLMENT_ROLES_1P2  # both versions (see the module docstring)
RACE_FIELDS = (
    "americanIndianOrAlaskaNative",
    "asian",
    "blackOrAfricanAmerican",
    "nativeHawaiianOrOtherPacificIslander",
    "white",
    "demographicRaceTwoOrMoreRaces",
    "hispanicOrLatinoEthnicity",
)
BIRTH_FIELDS = (
    "countryOfBirthCode",
    "stateOfBirthAbbreviation",
    "cityOfBirth",
    "publicSchoolResidenceStatus",
)

_BASE = ("sourcedId", "status", "dateLastModified", "metadata")
KEYS: dict[tuple[str, str], tuple[str, ...]] = {
    ("org", V1P1): (*_BASE, "name", "type", "identifier", "parent", "children"),
    ("academicSession", V1P1): (
        *_BASE,
        "title",
        "startDate",
        "endDate",
        "type",
        "parent",
        "children",
        "schoolYear",
    ),
    ("course", V1P1): (
        *_BASE,
        "title",
        "schoolYear",
        "courseCode",
        "grades",
        "subjects",
        "org",
        "subjectCodes",
        "resources",
    ),
    ("class", V1P1): (
        *_BASE,
        "title",
        "classCode",
        "classType",
        "location",
        "grades",
        "subjects",
        "course",
        "school",
        "terms",
        "subjectCodes",
        "periods",
        "resources",
    ),
    ("user", V1P1): (
        *_BASE,
        "username",
        "userIds",
        "enabledUser",
        "givenName",
        "familyName",
        "middleName",
        "role",
        "identifier",
        "email",
        "sms",
        "phone",
        "agents",
        "orgs",
        "grades",
    ),
    ("user", V1P2): (
        *_BASE,
        "userMasterIdentifier",
        "username",
        "userIds",
        "enabledUser",
        "givenName",
        "familyName",
        "middleName",
        "preferredFirstName",
        "preferredMiddleName",
        "preferredLastName",
        "pronouns",
        "roles",
        "userProfiles",
        "primaryOrg",
        "identifier",
        "email",
        "sms",
        "phone",
        "agents",
        "grades",
    ),
    ("enrollment", V1P1): (
        *_BASE,
        "user",
        "class",
        "school",
        "role",
        "primary",
        "beginDate",
        "endDate",
    ),
    ("demographics", V1P1): (*_BASE, "birthDate", "sex", *RACE_FIELDS, *BIRTH_FIELDS),
}
for _kind in ("org", "academicSession", "course", "class", "enrollment", "demographics"):
    KEYS[(_kind, V1P2)] = KEYS[(_kind, V1P1)]
