"""What Rollcall keeps of what providers send (issue 12, point 5: minimisation).

A provider pushes whole resources: an Entra user carries ``phoneNumbers``, ``addresses`` and the
enterprise ``manager``; a OneRoster hub puts a ``homeAddress`` or a medical note in
``metadata``. Rollcall keeps only the attributes one of its features uses (:data:`USED`, each
with the feature that needs it) plus the paths the district lists in its allow-list
(``keep_provider_attributes``: ``rollcall tenant set --keep-provider-attributes``,
``PATCH /admin/api/settings``, the Settings page). Everything else is dropped on arrival, before
anything is stored, audited or indexed, so it is never returned either. RFC 7644 §3.3 allows it:
"Since the server is free to alter and/or ignore POSTed content, returning the full
representation can be useful to the client"; the SCIM ``/Schemas`` answer lists only what is
kept (:func:`kept_schema_attributes`), so a client sees what it may send.

Paths name a SCIM attribute (``title``, ``phoneNumbers``), a sub-attribute of a singular complex
one (``name.formatted``), an extension attribute by its full URN
(``urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department``, or the extension's
URN for all of it), or a OneRoster metadata key (``metadata.homeAddress``). They are
case-insensitive, as SCIM attribute names are (RFC 7643 §2.1).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy.orm import Session

from server.domain.tenants import tenant_setting
from server.errors import InvalidValue

SETTING = "keep_provider_attributes"
EDUCATION_USER = "urn:rollcall:params:scim:schemas:extension:education:2.0:User"
EDUCATION_GROUP = "urn:rollcall:params:scim:schemas:extension:education:2.0:Group"

#: The attributes of a pushed resource that a Rollcall feature reads, and the feature.
USED: dict[str, dict[str, str]] = {
    "User": {
        "userName": "the username (sign-in, uniqueness, SCIM filters)",
        "externalId": "matching the provider's record again (SPEC §5, restore after delete)",
        "name.givenName": "the names (staff app, OneRoster, OIDC claims)",
        "name.familyName": "the names",
        "name.middleName": "the names",
        "emails": "the email (activation emails, adopting users by email)",
        "active": "deactivation and reactivation (SPEC §5)",
        "roles": "the OneRoster role when the education extension gives none",
        "userType": "the OneRoster role when the education extension gives none",
        EDUCATION_USER: "roles per school, grades, SIS identifier, birth date, sourcedId",
    },
    "Group": {
        "displayName": "the group's or class's title",
        "externalId": "matching the provider's record again",
        "members": "memberships and enrollments (display names shown in the staff app)",
        EDUCATION_GROUP: "a class: code, school, course, terms, type, sourcedId",
    },
}

_PATH = re.compile(r"^(urn:[A-Za-z0-9:._-]+:)?[A-Za-z$][\w$-]*(\.[A-Za-z$][\w$-]*)?$")


def allowed_paths(session: Session, tenant_id: str) -> frozenset[str]:
    """The district's allow-list, folded for comparison."""
    return frozenset(p.casefold() for p in tenant_setting(session, tenant_id, SETTING) or [])


def check_paths(value: Any) -> list[str]:
    """The allow-list as a sorted list of distinct paths (a list, or one text separated by
    commas or spaces).

    :raises InvalidValue: a path that is not an attribute path.
    """
    items = value.replace(",", " ").split() if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise InvalidValue("The kept provider attributes are a list of paths.", field=SETTING)
    paths = sorted({item.strip() for item in items if item.strip()}, key=str.casefold)
    wrong = [path for path in paths if not _PATH.match(path)]
    if wrong:
        raise InvalidValue(
            f"{wrong[0]!r} is not an attribute path (such as title, name.formatted, "
            "metadata.homeAddress or an extension URN followed by :attribute).",
            field=SETTING,
        )
    return paths


def minimise_extra(
    session: Session, tenant_id: str, extra: dict[str, Any], resource: str
) -> dict[str, Any]:
    """``extra`` of a user (``resource`` ``"User"``) or group/class (``"Group"``) with the
    provider's SCIM document, and a user's OneRoster ``metadata``, reduced to what is kept."""
    allowed = allowed_paths(session, tenant_id)
    kept = dict(extra)
    if isinstance(kept.get("scim"), dict):
        kept["scim"] = keep_scim(kept["scim"], resource, allowed)
    if resource == "User" and isinstance(kept.get("metadata"), dict):
        metadata = {
            k: v for k, v in kept["metadata"].items() if f"metadata.{k}".casefold() in allowed
        }
        if metadata:
            kept["metadata"] = metadata
        else:
            del kept["metadata"]
    return kept


def keep_scim(doc: dict[str, Any], resource: str, allowed: Iterable[str]) -> dict[str, Any]:
    """A SCIM document with only the used and allowed attributes (and the ``schemas`` of the
    extensions that are left).

    >>> keep_scim({"userName": "ann", "title": "Cook"}, "User", set())
    {'userName': 'ann'}
    """
    wanted = {path.casefold() for path in USED[resource]} | set(allowed)
    kept: dict[str, Any] = {}
    for key, value in doc.items():
        if key == "schemas":
            continue
        folded = key.casefold()
        if folded in wanted:
            kept[key] = value
        elif isinstance(value, dict):
            joint = ":" if folded.startswith("urn:") else "."
            part = {k: v for k, v in value.items() if f"{folded}{joint}{k}".casefold() in wanted}
            if part:
                kept[key] = part
    if "schemas" in doc:
        kept["schemas"] = [s for s in doc["schemas"] if s in kept or s not in doc]
    return kept


def keeps_extension(urn: str, resource: str, allowed: Iterable[str]) -> bool:
    """Whether anything of the extension ``urn`` is kept: if not, the service does not offer
    the extension at all (it leaves the resource type's ``schemaExtensions``)."""
    wanted = {path.casefold() for path in USED[resource]} | set(allowed)
    folded = urn.casefold()
    return folded in wanted or any(path.startswith(folded + ":") for path in wanted)


def kept_schema_attributes(schema: dict[str, Any], resource: str, allowed: Iterable[str]) -> None:
    """Trim a served SCIM schema (RFC 7643 §7) to the attributes that are kept, in place:
    ``id``, ``meta``, ``password`` and ``groups`` stay (they are the protocol's, not stored
    provider data)."""
    wanted = {path.casefold() for path in USED[resource]} | set(allowed)
    urn = str(schema.get("id") or "")
    core = urn.startswith("urn:ietf:params:scim:schemas:core:")
    if urn.casefold() in wanted:
        return
    attributes = []
    for attribute in schema.get("attributes") or []:
        name = str(attribute.get("name") or "")
        path = name.casefold() if core else f"{urn}:{name}".casefold()
        if (core and path in ("id", "meta", "password", "groups")) or path in wanted:
            attributes.append(attribute)
            continue
        subs = [
            sub
            for sub in attribute.get("subAttributes") or []
            if f"{path}.{sub.get('name', '')}".casefold() in wanted
        ]
        if subs:
            attributes.append({**attribute, "subAttributes": subs})
    schema["attributes"] = attributes
