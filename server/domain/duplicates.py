"""Possible duplicates: an active student who may be the person staff are about to create.

Add student, teachers' account requests, the admin API and the school CSV all ask
:func:`possible_duplicates` before creating a student (issue 14, item 3). A match is an
*active* student of the tenant with the same first and last name (folded: any case, any
accents) and

- the same birth date, or
- an enrolment in the same class, or
- (only for a file without birth dates, the school CSV) a role at the same school.

Only students the caller may see are matched and shown (least privilege, SPEC §8).

Interactive callers stop with :class:`~server.errors.PossibleDuplicate` unless the caller says
``allow_duplicate``; the import creates the row and reports warning W204.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import ColumnElement, and_, exists, or_, select
from sqlalchemy.orm import Session

from server.db import Enrollment, RecordStatus, User, UserRole, fold
from server.domain.access import visible_users
from server.domain.actors import Actor
from server.errors import PossibleDuplicate

MAX_SHOWN = 10


def possible_duplicates(
    session: Session,
    actor: Actor,
    given_name: str,
    family_name: str,
    *,
    birth_date: date | None = None,
    class_id: str | None = None,
    school_id: str | None = None,
    any_split: bool = False,
) -> list[User]:
    """The active students that may be this person, oldest first (see the module rule).

    ``any_split``: the name came as one full name (the school CSV), so any split of it into
    first and last name matches ("Ann Van Dyke" is also given "Ann", family "Van Dyke").
    """
    alike: list[ColumnElement[bool]] = []
    if birth_date is not None:
        alike.append(User.birth_date == birth_date)
    if class_id:
        alike.append(exists().where(Enrollment.user_id == User.id, Enrollment.class_id == class_id))
    if school_id:
        alike.append(exists().where(UserRole.user_id == User.id, UserRole.org_id == school_id))
    if not alike or not given_name.strip() or not family_name.strip():
        return []
    # An import runs as its connection, which sees only its own users: it is checked across
    # the tenant, and the school criterion keeps its report to the school imported to.
    seen = User.tenant_id == actor.tenant_id if actor.kind == "connection" else visible_users(actor)
    named = (
        same_full_name(f"{given_name} {family_name}")
        if any_split
        else and_(
            User.given_folded == fold(given_name.strip()),
            User.family_folded == fold(family_name.strip()),
        )
    )
    query = select(User).where(
        seen,
        User.status == RecordStatus.ACTIVE,
        User.primary_role == "student",
        named,
        or_(*alike),
    )
    return list(session.scalars(query.order_by(User.created_at).limit(MAX_SHOWN)))


def same_full_name(full_name: str) -> ColumnElement[bool]:
    """Users whose first and last name, put together, are ``full_name`` (folded), however it
    is split: each split is an indexed (given, family) pair."""
    words = full_name.split()
    splits = [(" ".join(words[:i]), " ".join(words[i:])) for i in range(1, len(words))]
    if not splits:
        return and_(User.given_folded == fold(full_name.strip()), User.family_folded == "")
    return or_(
        *(and_(User.given_folded == fold(g), User.family_folded == fold(f)) for g, f in splits)
    )


def refuse_duplicates(
    session: Session,
    actor: Actor,
    given_name: str,
    family_name: str,
    *,
    birth_date: date | None = None,
    class_id: str | None = None,
    allow_duplicate: bool = False,
) -> None:
    """Stop before creating a student who may already have an active account.

    :raises PossibleDuplicate: with the matches, unless ``allow_duplicate``.
    """
    if allow_duplicate:
        return
    found = possible_duplicates(
        session, actor, given_name, family_name, birth_date=birth_date, class_id=class_id
    )
    if found:
        raise PossibleDuplicate(
            f"{given_name.strip()} {family_name.strip()} may already have an active account: "
            "open it, or create a new account anyway.",
            [summary(user) for user in found],
        )


def summary(user: User) -> dict[str, str | None]:
    """What a caller is shown of a match: enough to tell two students apart."""
    return {
        "id": user.id,
        "username": user.username,
        "given_name": user.given_name,
        "family_name": user.family_name,
        "birth_date": user.birth_date.isoformat() if user.birth_date else None,
    }
