"""The user search staff need, and duplicate detection for manual creation.

Everything filters in SQL on indexed columns (folded names, username, identifier, role, grade,
school and class links), so a page of 100,000 users costs one query for the rows and one for the
count, whatever page is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from server.db import Enrollment, RecordStatus, User, UserGrade, UserRole, fold
from server.domain.access import visible_users
from server.domain.actors import Actor
from server.domain.vocabulary import check_grade, check_role, check_texts
from server.errors import InvalidValue

MAX_PAGE_SIZE = 500
# The most terms (comparisons, AND/OR/NOT nodes) a protocol filter may hold: SCIM and OneRoster
# both refuse larger ones with a 400 in their own format. Real clients send a handful; SQLite
# cannot run an expression nested ~1,000 deep at all, so a larger filter can never succeed.
MAX_FILTER_TERMS = 200
# Past any real list and inside every database's integers: a larger offset (a client's
# 10**23) overflowed SQLite's 64-bit integers with a 500. Beyond it, pages are empty.
MAX_OFFSET = 2**31 - 1
# The longest text searched as a substring (LIKE): SQLite refuses patterns over 50,000 bytes
# ("LIKE or GLOB pattern too complex", a 500), and 5,000 characters of up to 4 bytes, escaped,
# stay under it. Longer than any name, username or address.
MAX_PATTERN_CHARS = 5_000


def page_offset(offset: int) -> int:
    """``offset`` as a query can run it: negative counts from 0, past :data:`MAX_OFFSET` is
    an empty page.

    >>> page_offset(-3), page_offset(10**23)
    (0, 2147483647)
    """
    return min(max(0, offset), MAX_OFFSET)


@dataclass(frozen=True)
class UserQuery:
    """What staff type and tick: text (name, username, SIS identifier, email) and filters."""

    text: str = ""
    role: str | None = None
    school_id: str | None = None
    class_id: str | None = None
    grade: str | None = None
    include_inactive: bool = False
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True)
class Page:
    items: list[User]
    total: int
    offset: int
    limit: int

    @property
    def has_next(self) -> bool:
        return self.offset + len(self.items) < self.total


def search_users(session: Session, actor: Actor, query: UserQuery) -> Page:
    """Users ``actor`` may see that match ``query``, ordered by family then given name.

    Inactive users are left out unless ``include_inactive``; deleted users never appear.
    """
    check_texts(
        [
            query.text,
            query.role or "",
            query.school_id or "",
            query.class_id or "",
            query.grade or "",
        ],
        "search",
    )
    if len(query.text) > MAX_PATTERN_CHARS:
        raise InvalidValue(
            f"The search text can be at most {MAX_PATTERN_CHARS} characters long.",
            field="search",
        )
    conditions = [visible_users(actor), *_filters(query)]
    total = session.scalar(select(func.count()).select_from(User).where(*conditions)) or 0
    limit = max(1, min(query.limit, MAX_PAGE_SIZE))
    rows = session.scalars(
        select(User)
        .where(*conditions)
        .order_by(User.family_folded, User.given_folded, User.id)
        .limit(limit)
        .offset(page_offset(query.offset))
    )
    return Page(list(rows), total, page_offset(query.offset), limit)


def _filters(query: UserQuery) -> list[ColumnElement[bool]]:
    statuses = (
        (RecordStatus.ACTIVE, RecordStatus.INACTIVE)
        if query.include_inactive
        else (RecordStatus.ACTIVE,)
    )
    where: list[ColumnElement[bool]] = [User.status.in_(statuses)]
    for term in query.text.split():
        where.append(_matches_term(term))
    if query.role:
        role = check_role(query.role)
        where.append(
            or_(
                User.primary_role == role,
                User.id.in_(select(UserRole.user_id).where(UserRole.role == role)),
            )
        )
    if query.school_id:
        at_school = (
            select(UserRole.user_id)
            .where(UserRole.org_id == query.school_id)
            .union(select(Enrollment.user_id).where(Enrollment.school_id == query.school_id))
        )
        where.append(User.id.in_(at_school))
    if query.class_id:
        where.append(
            User.id.in_(
                select(Enrollment.user_id).where(
                    Enrollment.class_id == query.class_id, Enrollment.status == RecordStatus.ACTIVE
                )
            )
        )
    if query.grade:
        grade = check_grade(query.grade)
        where.append(User.id.in_(select(UserGrade.user_id).where(UserGrade.grade == grade)))
    return where


def _matches_term(term: str) -> ColumnElement[bool]:
    """A prefix match on the folded name, username and email columns, or an exact SIS id.

    Written so both databases can use an index: a LIKE prefix without an ESCAPE clause (SQLite
    skips its LIKE optimisation when one is present) unless the term holds a wildcard.
    """
    folded = fold(term) or ""
    columns = (User.given_folded, User.family_folded, User.username_folded, User.email_folded)
    if any(ch in folded for ch in "%_\\"):
        escaped = folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        matches = [column.like(escaped + "%", escape="\\") for column in columns]
    else:
        matches = [column.like(folded + "%") for column in columns]
    return or_(*matches, User.identifier == term)


def find_reactivation_candidates(
    session: Session, actor: Actor, given_name: str, family_name: str, birth_date: date | None
) -> list[User]:
    """Inactive accounts with the same name and birth date: offer "Reactivate" instead of a
    duplicate. Without a birth date, the name alone matches."""
    where = [
        visible_users(actor),
        User.status == RecordStatus.INACTIVE,
        User.given_folded == (fold(given_name.strip()) or ""),
        User.family_folded == (fold(family_name.strip()) or ""),
    ]
    if birth_date is not None:
        where.append(or_(User.birth_date == birth_date, User.birth_date.is_(None)))
    return list(session.scalars(select(User).where(*where).order_by(User.updated_at.desc())))
