"""Group members are matched by their ``value`` (RFC 7643 §4.2), whatever else an entry says.

Entra removes members with ``{"op": "Remove", "path": "members", "value": [{"$ref": null,
"value": "<id>"}]}`` (Microsoft's documented request). scim2-models reads every key of each
entry as a condition (``value eq "<id>" and $ref eq null``), which matches no stored member,
so the PATCH changed nothing and still answered 200; the strict profile refused it outright.
A member is the user its ``value`` names, so such a removal is rewritten, before the body is
validated, into the filter path RFC 7644 §3.5.2.2 itself uses to remove members:
``members[value eq "<id>" or …]``.

The rewrite holds on every tolerance profile: once only ``value`` counts the value list is
unambiguous. An entry without a string ``value`` names no member and is refused.

After such a change of members the answer is the patched group with its members as stored
(:func:`members_as_stored`).

>>> members_by_value({"op": "Remove", "path": "members", "value": [{"value": "2819c223"}]})
{'op': 'Remove', 'path': 'members[value eq "2819c223"]'}
"""

from __future__ import annotations

import json
from typing import Any, cast

from scim2_models import GroupMember, InvalidValueException, Resource

from server.db import Group

MEMBERS_PATHS = ("members", "urn:ietf:params:scim:schemas:core:2.0:group:members")


def match_members_by_value(body: Any) -> Any:
    """The decoded PATCH body with each member removal by value list as a filter path.

    Anything else, including bodies the library will refuse, is returned unchanged.

    :raises InvalidValueException: an entry of such a removal has no string ``value``.
    """
    if not isinstance(body, dict) or not isinstance(body.get("Operations"), list):
        return body
    operations = [members_by_value(op) for op in body["Operations"]]
    if operations == body["Operations"]:
        return body
    return {**body, "Operations": operations}


def members_by_value(operation: Any) -> Any:
    """One operation, rewritten when it removes members by a value list."""
    if not _removes_members_by_value(operation):
        return operation
    entries = operation["value"] if isinstance(operation["value"], list) else [operation["value"]]
    ids = [entry.get("value") if isinstance(entry, dict) else None for entry in entries]
    if not all(isinstance(member_id, str) and member_id for member_id in ids):
        raise InvalidValueException(
            detail='Each member to remove needs its "value": the id of the user (RFC 7643 §4.2).'
        )
    selection = " or ".join(f"value eq {json.dumps(member_id)}" for member_id in ids)
    rewritten = {key: value for key, value in operation.items() if key != "value"}
    rewritten["path"] = f"{operation['path']}[{selection}]"
    return rewritten


def _removes_members_by_value(operation: Any) -> bool:
    return (
        isinstance(operation, dict)
        and str(operation.get("op", "")).lower() == "remove"
        and isinstance(operation.get("path"), str)
        and operation["path"].strip().lower() in MEMBERS_PATHS
        and operation.get("value") not in (None, [])
    )


def members_as_stored(
    resource_type: str, group: Group, patched: Resource[Any], ids: list[str]
) -> Resource[Any]:
    """``patched`` with the members ``ids`` as :func:`scim.mapping.group_document` shows them
    (sorted, each with its reference) and the group's meta: after a change of members only,
    nothing else differs, so the group is not read and validated again (issue 15)."""
    kept: dict[str, Any] = {}
    for member in getattr(patched, "members", None) or []:
        if member.value in ids and member.value not in kept:
            kept[member.value] = member
    members = []
    for user_id in ids:
        member = kept.get(user_id)
        reference = f"Users/{user_id}"
        if member is None or member.ref != reference or member.type != "User":
            display = getattr(member, "display", None)
            member = GroupMember.model_validate(
                {"value": user_id, "$ref": reference, "type": "User", "display": display}
            )
        members.append(member)
    stored = patched.model_copy(update={"members": members})
    stored.id = group.id
    stored.meta = {  # type: ignore[assignment]
        "resourceType": resource_type,
        "created": group.created_at,
        "lastModified": group.updated_at,
        "version": f'W/"{group.version}"',
    }
    return stored


def members_to_index(
    stored: Resource[Any], before: list[str], after: list[str]
) -> tuple[set[str], list[dict[str, Any]]]:
    """After a change of members from ``before`` to ``after`` (ids, sorted): the members whose
    index rows are written (those who joined or left, and the first before and after: the
    entry a sort reads moves with it), and the group's members as its document holds them,
    whole for those, else their ``value`` alone (what the other entries' keys read)."""
    touched = set(before).symmetric_difference(after)
    if before[0] != after[0]:
        touched |= {before[0], after[0]}
    entries = [_entry_of(member, touched) for member in getattr(stored, "members", None) or []]
    return touched, entries


def _entry_of(member: Any, touched: set[str]) -> dict[str, Any]:
    if member.value in touched:
        whole = member.model_dump(mode="json", by_alias=True, exclude_none=True)
        return cast(dict[str, Any], whole)
    return {"value": member.value}
