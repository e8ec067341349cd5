"""Domain errors. Each protocol maps them once to its own wire format.

Every error carries a human message written for the person who will read it (a district admin,
a teacher, an identity-provider engineer) and, where one applies, the import status code of
SPEC §10 so file imports can report it per row.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of the errors a domain call raises on purpose; anything else is a bug."""

    status = 400
    code: str | None = None

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code


class NotFound(DomainError):
    """The record does not exist in the caller's tenant (or the caller may not see it)."""

    status = 404
    code = "R108"


class NotAllowed(DomainError):
    """The caller is known but lacks the permission for this action."""

    status = 403


class Conflict(DomainError):
    """The change contradicts existing data (uniqueness, ownership)."""

    status = 409


class UsernameTaken(Conflict):
    code = "R104"


class PossibleDuplicate(Conflict):
    """An active student who may be the same person exists; the caller may create anyway
    (``allow_duplicate``). ``matches`` lists them as plain summaries (issue 14, item 3)."""

    code = "possible_duplicate"

    def __init__(self, message: str, matches: list[dict[str, str | None]]) -> None:
        super().__init__(message)
        self.matches = matches


class OwnedByAnotherConnection(Conflict):
    """A push from one connection reached a record another connection owns (SPEC §4)."""

    code = "R109"

    def __init__(
        self, owner_name: str, what: str = "This record", *, provider: str | None = None
    ) -> None:
        super().__init__(
            f"{what} is managed by {provider or owner_name} (owned by the connection "
            f"{owner_name!r}): change it there; it can be taken over only if this connection "
            "is set to adopt matching users."
        )
        self.owner_name = owner_name


class ManagedBySource(Conflict):
    """A manual change to a field that the owning connection manages (the SSO guard of SPEC §4)."""

    code = "R107"

    def __init__(self, provider: str, fields: list[str], *, credential: bool) -> None:
        if credential:
            message = (
                f"This account is managed by {provider}. Change it in {provider}: a change made "
                "here would be lost at the next sync and would break sign-in."
            )
        else:
            message = (
                f"This account is managed by {provider}. Change it in {provider}: a change made "
                "here would be lost at the next sync. Send an explicit override to change it "
                "here anyway."
            )
        super().__init__(message, field=fields[0] if fields else None)
        self.provider = provider
        self.fields = fields
        self.credential = credential
        if not credential:
            self.code = "R109"


class VersionMismatch(DomainError):
    """The caller's version (ETag) is not the record's current one."""

    status = 412


class TooLarge(DomainError):
    """The request body is over a configured limit (the code names it: F010-F014)."""

    status = 413


class InvalidValue(DomainError):
    """A field value is malformed or outside its enumeration."""

    status = 400
    code: str | None = "R102"


class RequiredValue(InvalidValue):
    code = "R101"


class UsernameRejected(InvalidValue):
    code = "R105"


class PasswordRejected(InvalidValue):
    """The password breaks the tenant's password policy; the message says which rule."""

    code = "R106"


class NoLocalPassword(DomainError):
    """A password for an SSO-linked account: it signs in at its provider, never with one of ours."""

    status = 400
    code = "R107"

    def __init__(self, provider: str) -> None:
        super().__init__(
            f"Accounts from {provider} sign in with {provider}; Rollcall keeps no password for "
            "them, so the password was not accepted.",
            field="password",
        )
        self.provider = provider


class DatabaseUnavailable(Exception):
    """The database is busy (a held write lock, a lock or statement timeout) or unreachable
    (PostgreSQL down or restarting): the same request may succeed later.

    Not a :class:`DomainError`: nothing about the request is wrong. Every surface answers it
    with 503 and ``Retry-After`` in its own format (``server/unavailable.py``). Raised once,
    where the unit of work runs (``Database.session``); database errors that retrying cannot
    cure stay what they are.
    """

    retry_after = 5

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Interrupted(Exception):
    """Work stopped before it finished because its process is stopping (the grace period of a
    shutdown ended, or the operator pressed Ctrl-C): it rolled back, and the caller records it
    as interrupted (issue 13). Not a :class:`DomainError`: nothing about the request is wrong.
    """

    def __init__(self, reason: str = "a server shutdown") -> None:
        super().__init__(reason)
        self.reason = reason


class SecretKeyMismatch(DomainError):
    """Sealed values that no key of the ring (``ROLLCALL_SECRET_KEY`` plus
    ``ROLLCALL_OLD_SECRET_KEYS``) opens: the server must not start (or rotate) with this key."""

    status = 500

    def __init__(self, what: list[str]) -> None:
        super().__init__(
            f"{len(what)} sealed value(s) ({', '.join(what)}) cannot be opened with "
            "ROLLCALL_SECRET_KEY: the key changed. Put the previous key in "
            "ROLLCALL_OLD_SECRET_KEYS, then run `rollcall secrets rotate`."
        )
        self.what = what


class SchemaTooNew(DomainError):
    """The database schema is newer than this code (a later Rollcall migrated it)."""

    status = 500

    def __init__(self, database_revision: str, code_revision: str) -> None:
        super().__init__(
            f"The database schema is at revision {database_revision}, newer than this Rollcall "
            f"knows (its latest is {code_revision}): run the newer Rollcall, or restore a "
            "backup taken before the upgrade."
        )


class NotLinked(DomainError):
    """An upstream sign-in whose identity maps to no active SSO-linked user (issue 17)."""

    status = 403
    code = "not_linked"
