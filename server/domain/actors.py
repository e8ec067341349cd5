"""Who is acting: a staff member, a connection, a student, or the system itself."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from server.db import Connection, StaffAccount, StaffRole


@dataclass(frozen=True)
class Actor:
    """The caller of a domain function, bound to exactly one tenant.

    ``kind`` is ``staff``, ``connection``, ``student`` or ``system``. For staff, ``role`` and
    ``school_ids`` decide what they may see; for a connection, ``connection_id`` decides what it
    owns. ``person_id``/``person_name`` name the staff member who drove a connection's work (a
    file uploaded in the staff app): the audit log names that person, via the connection.
    """

    tenant_id: str
    kind: str
    name: str
    id: str | None = None
    role: str | None = None
    school_ids: tuple[str, ...] = field(default=())
    connection_id: str | None = None
    user_id: str | None = None
    person_id: str | None = None
    person_name: str | None = None

    @property
    def is_district_admin(self) -> bool:
        return self.kind == "system" or (
            self.kind == "staff" and self.role == StaffRole.DISTRICT_ADMIN
        )

    @property
    def is_teacher(self) -> bool:
        return self.kind == "staff" and self.role == StaffRole.TEACHER


def system_actor(tenant_id: str, name: str = "system") -> Actor:
    """The actor for set-up, the demo seed and background jobs."""
    return Actor(tenant_id=tenant_id, kind="system", name=name)


def connection_actor(connection: Connection) -> Actor:
    return Actor(
        tenant_id=connection.tenant_id,
        kind="connection",
        name=connection.name,
        id=connection.id,
        connection_id=connection.id,
        school_ids=tuple(connection.school_ids or ()),
    )


def staff_actor(staff: StaffAccount) -> Actor:
    return Actor(
        tenant_id=staff.tenant_id,
        kind="staff",
        name=staff.username,
        id=staff.id,
        role=staff.role,
        school_ids=tuple(staff.school_ids or ()),
        user_id=staff.user_id,
    )


def student_actor(tenant_id: str, user_id: str, username: str) -> Actor:
    """A student acting on their own account (changing their password at sign-in)."""
    return Actor(tenant_id=tenant_id, kind="student", name=username, id=user_id, user_id=user_id)


def on_behalf_of(actor: Actor, person: Actor | None) -> Actor:
    """``actor`` (a connection) acting for ``person`` (staff), as the audit log records it."""
    if person is None or person.kind != "staff":
        return actor
    return replace(actor, person_id=person.id, person_name=person.name)
