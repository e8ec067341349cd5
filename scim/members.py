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
import re
from contextlib import AbstractContextManager
from typing import Any, Protocol, cast

from scim2_models import GroupMember, InvalidValueException, Resource, ResourceType
from scim2_server.service import ScimService

from scim.errors import scim_errors
from scim.index import entry_values
from scim.lookups import published_meta
from scim.mapping import group_document
from server.db import Group
from server.domain import groups, scim_index
from server.domain.actors import Actor

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


# -- a PATCH that only adds and removes members of a plain group (issue 15) -----------------

PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
# members[value eq "<id>" or value eq "<id>" …]: RFC 7644 §3.5.2.2, and the rewrite above
REMOVAL = re.compile(r'members\[value eq "[^"\\]+"(?: or value eq "[^"\\]+")*\]')
REMOVED_ID = re.compile(r'value eq "([^"\\]+)"')
# the keys of a plain group's stored document: any other is an attribute a PATCH rewrites
PLAIN_KEYS = frozenset({"schemas", "displayName", "externalId", "members"})

Step = tuple[bool, tuple[str, ...]]  # (adds, the ids it adds or removes)


def member_steps(body: Any) -> list[Step] | None:
    """The steps of a PATCH body (decoded, :func:`match_members_by_value` applied) that only
    adds members by ``value`` (``{"op": "add", "path": "members", "value": [{"value": id}…]}``)
    or removes them by a filter on ``value``; ``None`` for any other body (the engine's).

    >>> member_steps({"schemas": [PATCH_OP], "Operations": [
    ...     {"op": "Add", "path": "members", "value": [{"value": "a1"}]},
    ...     {"op": "remove", "path": 'members[value eq "b2"]'}]})
    [(True, ('a1',)), (False, ('b2',))]
    """
    if not isinstance(body, dict) or set(body) != {"schemas", "Operations"}:
        return None
    operations = body["Operations"]
    if body["schemas"] != [PATCH_OP] or not isinstance(operations, list) or not operations:
        return None
    steps = [_step(operation) for operation in operations]
    return None if any(step is None for step in steps) else cast(list[Step], steps)


def _step(operation: Any) -> Step | None:
    if not isinstance(operation, dict) or not isinstance(operation.get("path"), str):
        return None
    op = str(operation.get("op")).lower()
    if op == "add" and set(operation) == {"op", "path", "value"}:
        entries = operation["value"]
        if operation["path"] != "members" or not isinstance(entries, list) or not entries:
            return None
        ids = [entry.get("value") if isinstance(entry, dict) else None for entry in entries]
        if any(set(entry) != {"value"} for entry in entries):
            return None
        return _distinct(True, ids)
    if op == "remove" and set(operation) == {"op", "path"}:
        if not REMOVAL.fullmatch(operation["path"]):
            return None
        return _distinct(False, REMOVED_ID.findall(operation["path"]))
    return None


def _distinct(adds: bool, ids: list[Any]) -> Step | None:
    """The step, if its ids are distinct non-empty strings with no space around them."""
    if not all(isinstance(i, str) and i and i.strip() == i for i in ids):
        return None
    return (adds, tuple(ids)) if len(set(ids)) == len(ids) else None


def members_after(current: list[str], steps: list[Step], displays: set[str]) -> list[str] | None:
    """The members (sorted) after ``steps``, when each adds only non-members and removes only
    members without a stored display name (``displays``), and some remain; else ``None``:
    the engine's PATCH, whose answers to the other cases (a no-op, an error) stay its own.

    >>> members_after(["a", "b"], [(True, ("c",)), (False, ("a",))], set())
    ['b', 'c']
    """
    members = set(current)
    for adds, ids in steps:
        if adds and members.isdisjoint(ids):
            members.update(ids)
        elif not adds and members.issuperset(ids) and displays.isdisjoint(ids):
            members.difference_update(ids)
        else:
            return None
    after = sorted(members)
    return after if members and current and after != current else None


def plain_document(extra: dict[str, Any] | None) -> dict[str, Any] | None:
    """A group's stored SCIM document when it holds nothing a PATCH of members rewrites (only
    the keys a plain group has), else ``None``."""
    doc = dict((extra or {}).get("scim") or {})
    return doc if PLAIN_KEYS.issuperset(doc) else None


def entries_to_index(
    members: list[dict[str, Any]], before: list[str], after: list[str]
) -> tuple[set[str], list[dict[str, Any]]]:
    """:func:`members_to_index` of the members of a group's document
    (:func:`scim.mapping.group_document`)."""
    touched = set(before).symmetric_difference(after)
    if before[0] != after[0]:
        touched |= {before[0], after[0]}
    entries = [m if m["value"] in touched else {"value": m["value"]} for m in members]
    return touched, entries


def published_group(
    service: ScimService, base_url: str, group: Group, doc: dict[str, Any]
) -> dict[str, Any]:
    """A plain group's document (:func:`scim.mapping.group_document`) as the engine publishes
    it: its id and meta, and its members' references as URLs."""
    meta = published_meta(service, base_url, "Group", group)
    users = service.resource_location(base_url, service.get_resource_type("User"), "")
    members = [
        {**m, "$ref": _user_location(service, base_url, users, m)} for m in doc.get("members") or []
    ]
    published: dict[str, Any] = {"schemas": doc["schemas"], "id": group.id}
    if doc.get("externalId") is not None:
        published["externalId"] = doc["externalId"]
    published["meta"] = meta
    published["displayName"] = doc["displayName"]
    if members:
        published["members"] = members
    return published


class Storage(Protocol):
    """What a change of members needs of the storage (:class:`scim.storage.RollcallStorage`)."""

    @property
    def session(self) -> Any: ...

    @property
    def actor(self) -> Actor: ...

    def savepoint(self) -> AbstractContextManager[None]: ...

    def record(self, resource_type: ResourceType, resource_id: str | None) -> Any: ...

    def forget_reads(self, written: Any) -> None: ...

    def model_of(self, resource_type: ResourceType) -> type[Resource[Any]]: ...


def change_members(
    storage: Storage, resource_type: ResourceType, group_id: str, steps: list[Step]
) -> tuple[Group, dict[str, Any]] | None:
    """A PATCH of :func:`member_steps` on a plain group, without the engine: its members are
    read once as ids, the domain applies the change (:func:`server.domain.groups.
    update_group`: the guard, the checks of who joins, the audit event), and only the index
    entries that move are written (:func:`entries_to_index`). Nothing is validated into a
    pydantic resource, copied or dumped per member (issue 15: ~290 ms of CPU for a PATCH of
    one member of a 1,000-member group). Returns the group and its document as stored;
    ``None`` for what the engine serves: a class, a group with other attributes, or steps
    :func:`members_after` leaves to it (nothing is written then).

    :raises NotFoundException: no such group visible to the connection (as the engine).
    """
    session, actor = storage.session, storage.actor
    with storage.savepoint(), scim_errors():
        group = storage.record(resource_type, group_id)
        stored = plain_document(group.extra) if isinstance(group, Group) else None
        if stored is None:
            return None
        displays = {m.get("value") for m in stored.get("members") or [] if m.get("display")}
        before = groups.group_member_ids(session, group)
        after = members_after(before, steps, displays)
        if after is None:
            return None
        groups.update_group(session, actor, group, {"member_ids": after}, current=before)
        storage.forget_reads(group)
        doc = group_document(session, group, after)
        touched, entries = entries_to_index(doc["members"], before, after)
        elements, values = entry_values(
            storage.model_of(resource_type), group.id, {"members": entries}, "members", touched
        )
        scim_index.replace_entries(
            session, group.tenant_id, str(resource_type.name), group.id, elements, values
        )
        return group, doc


def _user_location(service: ScimService, base_url: str, users: str, member: dict[str, Any]) -> str:
    """``ScimService.reference_location`` of a member's ``Users/<id>``: the location of the
    users' endpoint (``users``) and the id, unless the id has a character that makes it
    another reference (one join per member, not a URL parse)."""
    user_id: str = member["value"]
    if "/" in user_id or ":" in user_id or member["$ref"] != f"Users/{user_id}":
        return service.reference_location(base_url, member["$ref"])
    return users + user_id
