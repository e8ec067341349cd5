"""SCIM PATCH of a user's ``active`` alone, for :class:`scim.storage.RollcallStorage`.

Entra ID and Okta deactivate and reactivate users with a PATCH that replaces only ``active``
(RFC 7644 §3.5.2.3). It skips the engine's read, validation and deep copy of the whole
resource and loads no ORM user (issue 15): the domain reads the user as a plain row and
writes its status with one UPDATE (:func:`server.domain.status_rows.set_active`); the SCIM
index has no row of ``active`` to rewrite.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol

from scim2_models import NotFoundException, ResourceType

from scim.context import current_token
from scim.errors import scim_errors
from scim.lookups import admitted
from server.domain import status_rows
from server.domain.actors import Actor
from server.domain.user_views import UserView


class Storage(Protocol):
    """What the PATCH needs of the storage: its request's session and actor, its write's
    savepoint, and forgetting what the request read before the write."""

    @property
    def session(self) -> Any: ...

    @property
    def actor(self) -> Actor: ...

    def savepoint(self) -> AbstractContextManager[None]: ...

    def forget_found(self) -> None: ...


def set_active(
    storage: Storage, resource_type: ResourceType, resource_id: str, active: bool
) -> UserView:
    """A PATCH that replaces only a user's ``active`` (RFC 7644 §3.5.2.3): the domain reads the
    user as a plain row and writes its status with one UPDATE (the status rule of every
    surface). The answer is the view of the user as stored. The index holds no row of
    ``active`` (:data:`scim.values.STATUS_PATHS`: filters and sorts read the status), so
    nothing of it is written. A PATCH that changes nothing writes nothing, as the engine.

    The request's token is checked live in the read of the user (the handler's unit of
    work skips its own check): a revoked token finds no user, and is then refused.

    :raises UnauthorizedException: the token was revoked.
    :raises NotFoundException: no such user visible to the connection.
    :raises PreconditionFailedException: the user changed between its read and write."""
    with storage.savepoint(), scim_errors():
        found = None
        if "\x00" not in resource_id:  # PostgreSQL refuses NUL in a query (see _record)
            found = status_rows.set_active(
                storage.session, storage.actor, resource_id, active, token=current_token.get()
            )
        if found is None:
            admitted(storage.session)  # which: no such user, or a revoked token?
            raise NotFoundException(detail=f"No {resource_type.name} with id {resource_id!r}.")
        view, changed = found
        if changed:
            storage.forget_found()  # a read of this request is stale now
        return view
