"""Lookups and row hashes of a OneRoster import: sourcedIds to ids, each batch diffed against
the stored hashes in one SELECT so unchanged rows load nothing (issue 15)."""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import exists, select

from server.db import (
    AcademicSession,
    Course,
    Enrollment,
    Org,
    RecordStatus,
    SchoolClass,
    User,
)
from server.domain import record_refs, sync_hashes
from server.domain.import_records import ImportRecord, RowResult, Source
from server.errors import NotFound
from server.imports.contract import ImportContext

# --- lookups ----------------------------------------------------------------------------------


def _ids(ctx: ImportContext, model: Any) -> dict[str, str]:
    """sourcedId -> id of every record of a small kind (orgs, sessions, courses), cached."""
    name = model.__tablename__
    if name not in ctx.cache:
        rows = ctx.session.execute(
            select(model.sourced_id, model.id).where(model.tenant_id == ctx.tenant_id)
        )
        ctx.cache[name] = {sourced: id_ for sourced, id_ in rows}
    return ctx.cache[name]


def _resolve(ctx: ImportContext, model: Any, key: str, what: str, field: str) -> str:
    found = _ids(ctx, model).get(key)
    if found is None:
        raise NotFound(f"No {what} with sourcedId {key!r}.", field=field)
    return found


def _by_sourced_id(ctx: ImportContext, model: Any, keys: set[str]) -> dict[str, Any]:
    """The tenant's records of ``model`` with these sourcedIds (the rows that change them)."""
    found: dict[str, Any] = {}
    keys_list = sorted(k for k in keys if k)
    for start in range(0, len(keys_list), 900):
        chunk = keys_list[start : start + 900]
        query = select(model).where(model.tenant_id == ctx.tenant_id, model.sourced_id.in_(chunk))
        for record in ctx.session.scalars(query):
            found[record.sourced_id] = record
    return found


def none_stored(ctx: ImportContext, model: Any) -> bool:
    """Whether the tenant had no ``model`` rows when this run's write phase first asked (a
    first import), so that a batch's reads of its stored rows by sourcedId would find none;
    asked once per run and kind (issue 15). SQLite only: no one else writes while a write
    phase runs there (it holds the write lock, or runs on a private copy whose replay checks
    the state it started from); a key of a file is claimed by its first row (R103), so an
    earlier batch never stored a later one's keys. PostgreSQL reads every batch: another
    transaction may commit a row while the run writes."""
    name = f"none_stored:{model.__tablename__}"
    if name not in ctx.cache:
        session = ctx.session
        empty = session.get_bind().dialect.name == "sqlite" and not session.scalar(
            select(exists().where(model.tenant_id == ctx.tenant_id))
        )
        ctx.cache[name] = {"value": empty}
    return bool(ctx.cache[name]["value"])


def _stored(ctx: ImportContext, model: Any, keys: list[str]) -> dict[str, sync_hashes.Stored]:
    """:func:`sync_hashes.stored` of ``keys``, without a read when none is stored."""
    if none_stored(ctx, model):
        return {}
    return sync_hashes.stored(ctx.session, model, ctx.tenant_id, keys)


def _stored_rows(ctx: ImportContext, model: Any, keys: set[str]) -> dict[str, Any]:
    """:func:`_by_sourced_id`, without a read when none is stored."""
    return {} if none_stored(ctx, model) else _by_sourced_id(ctx, model, keys)


def _prefetch_own(model: Any) -> Any:
    """Diff a batch of orgs, sessions, courses or classes against the stored hashes; load
    only the rows that may change (issue 15)."""

    def prefetch(ctx: ImportContext, records: list[ImportRecord]) -> None:
        found = _stored(ctx, model, [r.key for r in records])
        digests = {r.number: _record_digest(ctx, model, r) for r in records}
        skipped = {
            r.number
            for r in records
            if sync_hashes.unchanged(ctx.actor, found.get(r.key), digests[r.number])
        }
        ctx.batch["digests"], ctx.batch["unchanged"] = digests, skipped
        # a row naming a record of its own batch (a school, its new district listed first)
        # is hashed when written, when the record it names has its id (ctx.synced)
        ctx.batch["digest_later"] = lambda record: _record_digest(ctx, model, record)
        rest = {r.key for r in records if r.number not in skipped}
        ctx.batch["own"] = _stored_rows(ctx, model, rest)

    return prefetch


def _record_digest(ctx: ImportContext, model: Any, record: ImportRecord) -> str | None:
    """What an orgs/academicSessions/courses/classes row's outcome depends on, hashed: its
    fields and the ids its references name now; None when one names nothing (R108)."""
    if record.status == "tobedeleted":
        return None
    if record.source is not None:
        return _source_digest(ctx, record.source)
    ids: dict[str, list[str | None]] = {}
    for ref, target in REFERENCES[model].items():
        value = record.refs.get(ref)
        keys = value if isinstance(value, list) else [value] if value else []
        ids[ref] = [_ids(ctx, target).get(key) for key in keys]
        if None in ids[ref]:
            return None
    return sync_hashes.digest({"fields": record.fields, "refs": record.refs, "ids": ids})


def _prefetch_users(ctx: ImportContext, records: list[ImportRecord]) -> None:
    """Diff the batch against the stored hashes in one SELECT; load only the rows that may
    change (issue 15)."""
    found = _stored(ctx, User, [r.key for r in records])
    digests = {r.number: _user_digest(ctx, r) for r in records}
    skipped = {
        r.number
        for r in records
        if sync_hashes.unchanged(ctx.actor, found.get(r.key), digests[r.number])
    }
    ctx.batch["digests"], ctx.batch["unchanged"] = digests, skipped
    ctx.batch["own"] = _stored_rows(ctx, User, {r.key for r in records if r.number not in skipped})


def _user_digest(ctx: ImportContext, record: ImportRecord) -> str | None:
    """What a users.csv row's outcome depends on, hashed; None: always apply the row (a
    password, a deactivation, a delta roles.csv that depends on the stored roles, a reference
    that names nothing)."""
    version = ctx.cache["version"]["value"]
    roles_mode = ctx.cache["roles_mode"]["value"] if ctx.cache["roles_present"]["value"] else None
    if record.password or record.status == "tobedeleted" or record.enabled is False:
        return None
    if version == "1.2" and roles_mode not in (None, "bulk"):
        return None
    if record.source is not None and roles_mode is None:
        return _source_digest(ctx, record.source)
    with_roles = _with_roles(ctx, record.key, record.source) if version == "1.2" else None
    if with_roles is not None:
        return _source_digest(ctx, with_roles)
    org_keys = [org for org, _, _ in record.refs.get("roles", [])]
    org_keys += [k for k in (record.refs.get("primary_org_key"),) if k]
    orgs = {key: _ids(ctx, Org).get(key) for key in org_keys}
    if None in orgs.values():
        return None
    return sync_hashes.digest(
        {
            "version": version,
            "users_mode": ctx.cache["users_mode"]["value"],
            "roles_mode": roles_mode,
            "fields": record.fields,
            "refs": record.refs,
            "orgs": orgs,
            "roles": ctx.cache.get("roles_by_user", {}).get(record.key, []),
        }
    )


def _prefetch_user_refs(ctx: ImportContext, records: list[ImportRecord]) -> None:
    ctx.batch["users"] = _by_sourced_id(
        ctx, User, {r.refs.get("user_key") or r.key for r in records}
    )


def _prefetch_enrollments(ctx: ImportContext, records: list[ImportRecord]) -> None:
    """Diff the batch against the stored hashes (nothing loaded; one SELECT when the batch
    names the users and classes its stored enrollments name); load only what the rows that
    may change need (issue 15)."""
    keys = [r.key for r in records]
    session, tenant_id = ctx.session, ctx.tenant_id
    linked: sync_hashes.Linked = ({}, {}, {})
    if not none_stored(ctx, Enrollment):
        linked = sync_hashes.stored_enrollments(session, tenant_id, keys)
    found, people, classes = linked
    # the users and classes the stored enrollments do not name (new or re-pointed rows), read
    # once as the references the rows that change need (a first import read them twice)
    asked_users = {r.refs["user_key"] for r in records} - people.keys()
    user_refs = record_refs.users_named(session, tenant_id, asked_users)
    people |= {key: _as_stored(ref) for key, ref in user_refs.items()}
    asked_classes = {r.refs["class_key"] for r in records} - classes.keys()
    class_refs = record_refs.classes_named(session, tenant_id, asked_classes)
    classes |= {key: _as_stored(ref) for key, ref in class_refs.items()}
    known = _resolvers(ctx, people, classes)
    digests = {r.number: _enrollment_digest(ctx, r, people, classes, known) for r in records}
    skipped = {
        r.number
        for r in records
        if sync_hashes.unchanged(ctx.actor, found.get(r.key), digests[r.number])
    }
    ctx.batch["digests"], ctx.batch["unchanged"] = digests, skipped
    rest = [r for r in records if r.number not in skipped]
    # the stored enrollments a row may change, as records (the rules of an update need them);
    # the users and classes the rows name as tuples: the rules of a reference read a few
    # columns, and an ORM object each was a sixth of a first import (issue 15)
    ctx.batch["own"] = _by_sourced_id(ctx, Enrollment, {r.key for r in rest if r.key in found})
    users_named = {r.refs["user_key"] for r in rest}
    ctx.batch["users"] = {k: user_refs[k] for k in users_named & user_refs.keys()}
    ctx.batch["users"] |= record_refs.users_named(session, tenant_id, users_named - asked_users)
    classes_named = {r.refs["class_key"] for r in rest}
    ctx.batch["classes"] = {k: class_refs[k] for k in classes_named & class_refs.keys()}
    ctx.batch["classes"] |= record_refs.classes_named(
        session, tenant_id, classes_named - asked_classes
    )


def _as_stored(ref: record_refs.UserRef | record_refs.ClassRef) -> sync_hashes.Stored:
    """What a row hash reads of a user or class (its id, owner and status), from the
    reference read for the rules; the record's own hash is not part of it."""
    return sync_hashes.Stored(ref.id, ref.connection_id, ref.status, ref.version, None)


def _enrollment_digest(
    ctx: ImportContext,
    record: ImportRecord,
    people: dict[str, sync_hashes.Stored],
    classes: dict[str, sync_hashes.Stored],
    known: Resolvers,
) -> str | None:
    """What an enrollments.csv row's outcome depends on, hashed: its fields and the records
    it names as they stand; None when a reference names nothing (the row reports R108/R109)."""
    user, klass = people.get(record.refs["user_key"]), classes.get(record.refs["class_key"])
    school_key = record.refs.get("school_key")
    school = _ids(ctx, Org).get(school_key) if school_key else None
    if record.status == "tobedeleted" or user is None or klass is None:
        return None
    if not record_refs.may_reference(ctx.actor, user.status, user.connection_id):
        return None
    if klass.status == RecordStatus.DELETED or (school_key and school is None):
        return None
    if record.source is not None:
        return _source_digest(ctx, record.source, known)
    return sync_hashes.digest(
        {"fields": record.fields, "user": user.id, "class": klass.id, "school": school}
    )


def _source_digest(
    ctx: ImportContext, source: Source, known: Resolvers | None = None
) -> str | None:
    """The hash of a row known by its cells as read (issue 15, ``record.source``): their
    digest and the ids of the records it names now (``known``: the users and classes it may
    name, see :func:`_resolvers`; none by default); None when one names nothing, or a user
    it may not name (R108/R109), or a deleted class: the row is then applied."""
    ids = _named_ids(source[1], known if known is not None else _resolvers(ctx, {}, {}))
    return sync_hashes.row_digest(source[0], ids) if ids is not None else None


class Resolvers(dict[str, dict[str, str]]):
    """Per kind of record a row may name: sourcedId -> id of those it may name as they stand
    (see :func:`_resolvers`); the orgs, sessions and courses read when first named."""

    def __init__(self, ctx: ImportContext) -> None:
        super().__init__()
        self.ctx = ctx

    def __missing__(self, kind: str) -> dict[str, str]:
        self[kind] = found = _ids(self.ctx, SMALL_KINDS[kind])
        return found


def _resolvers(
    ctx: ImportContext,
    people: dict[str, sync_hashes.Stored],
    classes: dict[str, sync_hashes.Stored],
) -> Resolvers:
    """What a row may name (the rules of :func:`_source_digest`): any org, session or course
    of the tenant; a class not deleted; a user not deleted that the importing connection
    owns."""
    found = Resolvers(ctx)
    found["user"] = {
        key: user.id
        for key, user in people.items()
        if record_refs.may_reference(ctx.actor, user.status, user.connection_id)
    }
    deleted = RecordStatus.DELETED
    found["class"] = {key: klass.id for key, klass in classes.items() if klass.status != deleted}
    return found


def _named_ids(
    named: tuple[tuple[str, tuple[str, ...]], ...], known: Resolvers
) -> list[str] | None:
    """The ids of the records a row names, in order; None when one is not in ``known``."""
    ids: list[str] = []
    for kind, keys in named:
        table = known[kind]
        for key in keys:
            found = table.get(key)
            if found is None:
                return None
            ids.append(found)
    return ids


SMALL_KINDS: dict[str, Any] = {"org": Org, "academic_session": AcademicSession, "course": Course}
SIGHTED_MODELS: dict[str, Any] = {
    "orgs.csv": Org,
    "academicSessions.csv": AcademicSession,
    "courses.csv": Course,
    "classes.csv": SchoolClass,
    "users.csv": User,
    "enrollments.csv": Enrollment,
}


def sighted_unchanged(
    ctx: ImportContext, file: str, rows: list[tuple[int, str, Source]], *, whole: bool = False
) -> set[int]:
    """Row numbers among ``(number, key, source)`` whose stored hash matches (issue 15):
    what the prefetch of ``file`` would skip, found from the cells before translating them
    (in a read snapshot before the write transaction, and again in it when that moved).

    ``whole``: the users and classes enrollments name are read once for the whole tenant
    and kept in ``ctx.cache`` (a read snapshot: they do not change under it)."""
    model = SIGHTED_MODELS.get(file)
    if model is User and ctx.cache["roles_present"]["value"]:
        rows = [
            (number, key, with_roles)
            for number, key, source in rows
            if (with_roles := _with_roles(ctx, key, source)) is not None
        ]  # 1.2 users: their hash holds their roles.csv rows too
    if model is None or not rows:
        return set()
    found = sync_hashes.stored_hashes(ctx.session, model, ctx.actor, [key for _, key, _ in rows])
    if not found:
        return set()
    if whole:
        known = _whole_resolvers(ctx, model is Enrollment)
    else:
        people: dict[str, sync_hashes.Stored] = {}
        classes: dict[str, sync_hashes.Stored] = {}
        if model is Enrollment:
            named: dict[str, set[str]] = {"user": set(), "class": set()}
            for _, _, (_, references) in rows:
                for kind, names in references:
                    if kind in named:
                        named[kind].update(names)
            people = sync_hashes.stored(ctx.session, User, ctx.tenant_id, named["user"])
            classes = sync_hashes.stored(ctx.session, SchoolClass, ctx.tenant_id, named["class"])
        known = _resolvers(ctx, people, classes)
    same = set()
    for number, key, (digest, named_keys) in rows:
        stored = found.get(key)
        if stored is None:
            continue
        ids = _named_ids(named_keys, known)
        if ids is not None and sync_hashes.matches_row(stored, digest, ids):
            same.add(number)
    return same


def gather_role_source(ctx: ImportContext, record: ImportRecord) -> None:
    """Keep a roles.csv row's ``source`` for its user's row hash (:func:`_with_roles`), in
    file order; None for a row that names no role to keep (``tobedeleted``)."""
    kept = record.source if record.status != "tobedeleted" else None
    ctx.cache.setdefault("role_sources", {}).setdefault(record.refs["user_key"], []).append(kept)


def _with_roles(ctx: ImportContext, key: str, source: Source | None) -> Source | None:
    """A 1.2 user's ``source`` joined with those of its roles.csv rows (in file order, see
    :func:`gather_role_source`): what the user row's outcome depends on as read, with a bulk
    roles.csv (a delta one changes roles stored before: never hashed). None: hashed from its
    fields (a row or role that always applies) or never (no role: R101)."""
    if source is None or ctx.cache["roles_mode"]["value"] != "bulk":
        return None
    roles = ctx.cache.get("role_sources", {}).get(key)
    if not roles or None in roles:
        return None
    cells = "\x1d".join([source[0], *(role[0] for role in roles if role is not None)])
    named = source[1] + tuple(named for role in roles if role is not None for named in role[1])
    return hashlib.sha256(cells.encode()).hexdigest(), named


def role_refs(ctx: ImportContext, key: str) -> list[str]:
    """The orgs a user's roles.csv rows name (read ahead): a sighted user row names them too."""
    roles = ctx.cache.get("role_sources", {}).get(key) or []
    return [org for role in roles if role is not None for _, keys in role[1] for org in keys]


def _whole_resolvers(ctx: ImportContext, everyone: bool) -> Resolvers:
    """:func:`_resolvers` of a read snapshot, kept in ``ctx.cache`` for the run: with every
    user and class of the tenant when ``everyone`` (enrollments name them), read once."""
    name = "resolvers_all" if everyone else "resolvers"
    known: Resolvers | None = ctx.cache.get(name)  # type: ignore[assignment]
    if known is None:
        people = _everyone(ctx, User) if everyone else {}
        classes = _everyone(ctx, SchoolClass) if everyone else {}
        known = ctx.cache[name] = _resolvers(ctx, people, classes)
    return known


def _everyone(ctx: ImportContext, model: Any) -> dict[str, sync_hashes.Stored]:
    """Every user or class of the tenant as stored, read once per run (``ctx.cache``)."""
    name = f"all_{model.__tablename__}"
    if name not in ctx.cache:
        ctx.cache[name] = sync_hashes.stored_all(ctx.session, model, ctx.tenant_id)
    return ctx.cache[name]


def has_row_hashes(ctx: ImportContext, file: str) -> bool:
    """Whether the connection has a stored row hash for ``file``'s kind (none on a first
    import: its rows are then translated without being compared)."""
    model = SIGHTED_MODELS.get(file)
    if model is None:
        return False
    query = exists().where(
        model.tenant_id == ctx.tenant_id,
        model.connection_id == ctx.connection.id,
        model.content_hash.is_not(None),
    )
    return bool(ctx.session.scalar(select(query)))


REFERENCES: dict[Any, dict[str, Any]] = {
    Org: {"parent_key": Org},
    AcademicSession: {"parent_key": AcademicSession},
    Course: {"org_key": Org, "school_year_key": AcademicSession},
    SchoolClass: {"school_key": Org, "course_key": Course, "term_keys": AcademicSession},
}


def _result(
    record: ImportRecord, outcome: str, changes: dict[str, Any] | None = None, **kw: Any
) -> RowResult:
    return RowResult(record.file, record.number, record.key, outcome, changes=changes or {}, **kw)


def _batch_user(ctx: ImportContext, key: str, field: str) -> Any:
    """The prefetched user a row names (a ``User``, or a ``UserRef`` for enrollments),
    checked by the domain (R108, R109)."""
    return record_refs.referenced_user(ctx.actor, ctx.batch["users"].get(key), key, field)
