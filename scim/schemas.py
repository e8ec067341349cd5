"""What the SCIM service serves (RFC 7643 §5-§7): resource types, the Rollcall education
extensions and the ServiceProviderConfig, with one :class:`ScimPolicy` per tolerance profile.

The education extensions carry what OneRoster needs and the core schema lacks:

- ``urn:rollcall:params:scim:schemas:extension:education:2.0:User``: ``roles`` (a OneRoster
  role at a school, the school named by its org sourcedId), ``grades`` (CEDS codes),
  ``sisIdentifier``, ``birthDate`` (YYYY-MM-DD) and ``sourcedId``;
- ``urn:rollcall:params:scim:schemas:extension:education:2.0:Group``: a group carrying it is a
  class: ``classCode``, ``school``, ``course``, ``terms`` (sourcedIds), ``classType``,
  ``sourcedId``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from scim2_models import (
    URN,
    AuthenticationScheme,
    Bulk,
    CaseExact,
    ChangePassword,
    ComplexAttribute,
    EnterpriseUser,
    ETag,
    Extension,
    External,
    Filter,
    Group,
    Pagination,
    Patch,
    Reference,
    Required,
    ResourceType,
    Returned,
    ScimPolicy,
    ScimProvider,
    ServiceProviderConfig,
    Sort,
    User,
)

from server.domain.vocabulary import CLASS_TYPES, GRADES, ROLES

EDUCATION_USER = "urn:rollcall:params:scim:schemas:extension:education:2.0:User"
EDUCATION_GROUP = "urn:rollcall:params:scim:schemas:extension:education:2.0:Group"

MAX_BULK_OPERATIONS = 1000
MAX_PAYLOAD_SIZE = 4 * 1024 * 1024
MAX_RESULTS = 1000
DEFAULT_PAGE_SIZE = 100


class SchoolRole(ComplexAttribute):
    """A OneRoster role of the user at one school."""

    role: Annotated[str | None, Required.true] = Field(None, examples=list(ROLES))
    # canonicalValues of ``school`` are the district's school sourcedIds (RollcallService).
    school: Annotated[str | None, Required.true, CaseExact.true] = None
    role_type: str | None = Field(None, examples=["primary", "secondary"])


class EducationUser(Extension):
    __schema__ = URN(EDUCATION_USER)

    roles: list[SchoolRole] | None = None
    grades: list[str] | None = Field(None, examples=list(GRADES))
    sis_identifier: Annotated[str | None, CaseExact.true] = None
    # A date (YYYY-MM-DD): SCIM has no date type, and a dateTime would invent a time of birth.
    birth_date: str | None = Field(None, examples=["2014-09-01"])
    sourced_id: Annotated[str | None, CaseExact.true] = None


class EducationGroup(Extension):
    __schema__ = URN(EDUCATION_GROUP)

    class_code: str | None = None
    school: Annotated[str | None, CaseExact.true] = None
    course: Annotated[str | None, CaseExact.true] = None
    terms: list[str] | None = None
    class_type: str | None = Field(None, examples=list(CLASS_TYPES))
    sourced_id: Annotated[str | None, CaseExact.true] = None


CONFIG = ServiceProviderConfig(
    documentation_uri=Reference[External]("https://www.rfc-editor.org/info/rfc7644"),
    patch=Patch(supported=True),
    bulk=Bulk(
        supported=True, max_operations=MAX_BULK_OPERATIONS, max_payload_size=MAX_PAYLOAD_SIZE
    ),
    filter=Filter(supported=True, max_results=MAX_RESULTS),
    change_password=ChangePassword(supported=False),
    sort=Sort(supported=True),
    etag=ETag(supported=True),
    pagination=Pagination(
        cursor=True,
        index=True,
        default_pagination_method=Pagination.DefaultPaginationMethod.index,
        default_page_size=DEFAULT_PAGE_SIZE,
        max_page_size=MAX_RESULTS,
        cursor_timeout=3600,
    ),
    authentication_schemes=[
        AuthenticationScheme(
            type=AuthenticationScheme.Type.oauthbearertoken,
            name="OAuth Bearer Token",
            description="A connection's bearer token (rollcall connection add … --kind scim).",
            spec_uri=Reference[External]("https://www.rfc-editor.org/info/rfc6750"),
            primary=True,
        )
    ],
)

# Tolerance profiles (rollcall connection add … --profile NAME). Strict RFC 7644 by default;
# the identity providers' profiles accept the request shapes they really send:
# Entra removes values by listing them ({"op":"Remove","path":"emails","value":[…]}; for
# members this holds on every profile, see scim/members.py) and adds through a filter path
# that matches nothing; all of them may send attributes we do not declare, which
# are then kept (in the record's extra JSON) rather than refused.
PROFILES: dict[str | None, ScimPolicy] = {
    None: ScimPolicy(),
    "entra": ScimPolicy(
        unknown=ScimPolicy.Unknown.keep,
        remove_value_as_filter=ScimPolicy.RemoveValue.apply,
        unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create,
    ),
    "okta": ScimPolicy(unknown=ScimPolicy.Unknown.keep),
    "google": ScimPolicy(unknown=ScimPolicy.Unknown.keep),
}


def never_returned() -> frozenset[str]:
    """The attributes any served schema marks ``returned: never`` (RFC 7643 §7): secrets."""
    names: set[str] = set()
    for schema in make_provider().schemas:
        pending = [(attribute, "") for attribute in schema.attributes or []]
        while pending:
            attribute, prefix = pending.pop()
            if attribute.returned == Returned.never:
                names.add(prefix + (attribute.name or ""))
            pending += [(sub, f"{attribute.name}.") for sub in attribute.sub_attributes or []]
    return frozenset(names)


def make_provider(profile: str | None = None) -> ScimProvider:
    """The provider (schemas, resource types, config) with the policy of a profile."""
    return ScimProvider(
        models=[User, EnterpriseUser, EducationUser, Group, EducationGroup],
        resource_types=[
            ResourceType.from_resource(User[EnterpriseUser | EducationUser]),
            # scim2-models declares Group without a type parameter; at run time it takes one
            ResourceType.from_resource(Group[EducationGroup]),  # type: ignore[misc]
        ],
        config=CONFIG,
        policy=PROFILES.get(profile, PROFILES[None]),
    )
