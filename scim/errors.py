"""Domain errors mapped, once, to SCIM errors (RFC 7644 §3.12)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from scim2_models import (
    ConflictException,
    ForbiddenException,
    InvalidValueException,
    NotFoundException,
    PreconditionFailedException,
    SCIMException,
    UniquenessException,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from server.errors import (
    Conflict,
    DomainError,
    InvalidValue,
    ManagedBySource,
    NoLocalPassword,
    NotAllowed,
    NotFound,
    OwnedByAnotherConnection,
    UsernameTaken,
    VersionMismatch,
)


def scim_error(error: DomainError) -> SCIMException:
    """The SCIM error for a domain error; the message is the domain's, written for people."""
    detail = error.message
    if isinstance(error, UsernameTaken | OwnedByAnotherConnection):
        return UniquenessException(detail=detail)
    if isinstance(error, ManagedBySource):
        return ConflictException(detail=detail)
    if isinstance(error, Conflict):
        return (
            UniquenessException(detail=detail) if error.field else ConflictException(detail=detail)
        )
    if isinstance(error, VersionMismatch):
        return PreconditionFailedException(detail=detail)
    if isinstance(error, NotFound):
        # A reference to a missing org, term or user inside the payload is a bad value;
        # the resource itself missing is a 404.
        if error.field:
            return InvalidValueException(detail=detail)
        return NotFoundException(detail=detail)
    if isinstance(error, NotAllowed):
        return ForbiddenException(detail=detail)
    if isinstance(error, InvalidValue | NoLocalPassword):
        return InvalidValueException(detail=detail)
    return InvalidValueException(detail=detail)


@contextmanager
def scim_errors() -> Iterator[None]:
    """Raise domain and database errors as the SCIM errors they mean."""
    try:
        yield
    except DomainError as error:
        raise scim_error(error) from error
    except StaleDataError as error:
        raise PreconditionFailedException(
            detail="The resource was changed by another request; read it again."
        ) from error
    except IntegrityError as error:
        raise UniquenessException(detail="A unique value is already used.") from error
