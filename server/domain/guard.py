"""Sources and the SSO guard (SPEC §4): who may change which field of a record.

The one place that decides it. A record belongs to exactly one connection:

- its own connection's pushes may change everything;
- on an SSO-linked user (owned by a connection with ``sso``) nobody else may change the
  username or the password, not even with an override: the next sync would undo it and the
  account would no longer sign in at the provider;
- other fields of a record owned by any connection other than the manual one need an explicit
  override, which the caller must audit;
- a connection never changes another connection's record (that is adoption, see
  :func:`server.domain.user_adoption.adopt_user`), and an SSO-linked user is adopted only by the SSO
  connection of the same provider (:func:`check_adoption`): any other adopter could then set
  a password and the account would sign in around its provider.
"""

from __future__ import annotations

from collections.abc import Iterable

from server.db import Connection, ConnectionKind
from server.domain.actors import Actor
from server.errors import ManagedBySource, OwnedByAnotherConnection

CREDENTIAL_FIELDS = frozenset({"username", "password"})
# Fields that staff may always change on a non-SSO account, whoever owns it: resetting a
# password is daily work for a teacher and no non-SSO source manages the password itself.
STAFF_MANAGED_FIELDS = frozenset({"password"})


def check_change(
    actor: Actor,
    owner: Connection,
    fields: Iterable[str],
    *,
    override: bool = False,
    what: str = "This record",
) -> bool:
    """Allow or refuse a change of ``fields`` on a record owned by ``owner``.

    Returns True when the change goes through only because of ``override`` (audit it).
    ``what`` names the record in the refusal ("This student is managed by Clever …").

    :raises ManagedBySource: a manual change to a field the owning connection manages.
    :raises OwnedByAnotherConnection: a connection changing another connection's record.
    """
    fields = sorted(set(fields))
    if not fields:
        return False
    if actor.kind == "connection":
        if actor.connection_id == owner.id:
            return False
        raise OwnedByAnotherConnection(owner.name, what, provider=owner.provider_name)
    if owner.kind == ConnectionKind.MANUAL:
        return False
    if owner.sso:
        locked = [name for name in fields if name in CREDENTIAL_FIELDS]
        if locked:
            raise ManagedBySource(owner.provider_name, locked, credential=True)
    owned = [name for name in fields if name not in STAFF_MANAGED_FIELDS]
    if not owned:
        return False
    if not override:
        raise ManagedBySource(owner.provider_name, owned, credential=False)
    return True


def check_adoption(adopter: Connection, owner: Connection) -> None:
    """Allow or refuse ``adopter`` taking over a user that ``owner`` holds (SPEC §4).

    A user of a non-SSO connection may be adopted by any connection set to adopt; an SSO-linked
    user only by an SSO connection of the same provider (Clever to Clever).

    :raises ManagedBySource: (R107, 409) the user is SSO-linked to another provider's account.
    """
    if not is_sso_linked(owner):
        return
    same_provider = adopter.provider_name.casefold() == owner.provider_name.casefold()
    if is_sso_linked(adopter) and same_provider:
        return
    raise ManagedBySource(owner.provider_name, ["connection"], credential=True)


def is_sso_linked(owner: Connection) -> bool:
    return owner.sso and owner.kind != ConnectionKind.MANUAL


def override_warning(owner: Connection) -> str:
    return (
        f"Changed here by override: {owner.provider_name} manages this record and the next "
        "sync will overwrite the change."
    )
