"""Usernames: validation and generation from the tenant's pattern (SPEC §6).

Usernames are unique per tenant without regard to case: ``JDoe`` and ``jdoe`` are the same
account. Generated ones follow the tenant pattern, folded to lower-case ASCII, at least six
characters, with a number added on collision::

    Zoë O'Brien  ->  zoeobrien, then zoeobrien2, zoeobrien3…
    Al Li        ->  alli01 (padded to six characters)
"""

from __future__ import annotations

import re
import unicodedata

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db import User, fold, not_deleted
from server.errors import UsernameRejected

PATTERNS = ("{first}{last}", "{first}.{last}", "{f}{last}", "email", "fullname")
DEFAULT_PATTERN = "{first}{last}"
MIN_GENERATED_LENGTH = 6
MAX_LENGTH = 128
_ALLOWED = re.compile(r"^[\w.@+'-]+$", re.UNICODE)


def validate_username(username: str) -> str:
    """Return the trimmed username or raise :class:`UsernameRejected` with the reason."""
    username = username.strip()
    if not username:
        raise UsernameRejected("The username cannot be empty.", field="username")
    if len(username) > MAX_LENGTH:
        raise UsernameRejected(
            f"The username can be at most {MAX_LENGTH} characters long.", field="username"
        )
    if not _ALLOWED.match(username):
        raise UsernameRejected(
            "The username may contain letters, digits and . _ - @ + ' only (no spaces).",
            field="username",
        )
    return username


def ascii_fold(text: str) -> str:
    """Lower-case ASCII letters and digits only: ``"Zoë O'Brien" -> "zoeobrien"``."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return re.sub(r"[^a-z0-9]", "", stripped.lower().replace("ß", "ss"))


def username_base(pattern: str, given: str, family: str, email: str | None = None) -> str:
    """The username a pattern gives before padding and collision numbering."""
    first, last = ascii_fold(given), ascii_fold(family)
    if pattern == "email" and email:
        return email.strip().lower()
    if pattern == "fullname":
        return ascii_fold(f"{given}{family}")
    if pattern == "{first}.{last}":
        return ".".join(part for part in (first, last) if part)
    if pattern == "{f}{last}":
        return f"{first[:1]}{last}"
    return f"{first}{last}"


def generate_username(
    session: Session,
    tenant_id: str,
    given: str,
    family: str,
    *,
    email: str | None = None,
    pattern: str = DEFAULT_PATTERN,
    reserved: set[str] | None = None,
) -> str:
    """A username free in the tenant (and not in ``reserved``, for names chosen in one batch)."""
    base = username_base(pattern, given, family, email) or "user"
    if len(base) < MIN_GENERATED_LENGTH:
        base = base + "0" * (MIN_GENERATED_LENGTH - len(base) - 1) + "1"
    taken = _taken_with_prefix(session, tenant_id, base) | {fold(n) for n in reserved or ()}
    if fold(base) not in taken:
        return base
    number = 2
    while fold(f"{base}{number}") in taken:
        number += 1
    return f"{base}{number}"


def _taken_with_prefix(session: Session, tenant_id: str, base: str) -> set[str]:
    """Every live username starting with ``base``, in one query."""
    prefix = fold(base) or ""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    rows = session.scalars(
        select(User.username_folded).where(
            User.tenant_id == tenant_id,
            not_deleted(User.status),
            User.username_folded.like(f"{escaped}%", escape="\\"),
        )
    )
    return set(rows)


def is_username_taken(
    session: Session, tenant_id: str, username: str, *, except_user_id: str | None = None
) -> bool:
    query = select(User.id).where(
        User.tenant_id == tenant_id,
        not_deleted(User.status),
        User.username_folded == fold(username),
    )
    if except_user_id:
        query = query.where(User.id != except_user_id)
    return session.scalars(query.limit(1)).first() is not None
