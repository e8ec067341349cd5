"""Rollcall's side of the SCIM benchmark: a database holding N SCIM users, and its server.

:func:`prepare` migrates a fresh database, adds a tenant and a SCIM connection (its bearer
token is returned) and stores users ``0…N-1`` of :mod:`bench.scim_data` as a SCIM create
would (the user row, its pending credential, its document in ``extra["scim"]`` and its
attribute-index rows), in batches of plain INSERTs: creating 100,000 users over HTTP first
would take longer than the benchmark. :func:`check_like_created` compares one loaded user
with one created over HTTP, so a drift between the two shows up at once.
"""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import func, insert, select, text

from bench.scim_data import user_document, user_id
from scim import mapping
from scim.index import indexed_values
from scim.schemas import make_provider
from server.db import Credential, ScimValue, User, fold
from server.db.base import utcnow
from server.db.migrate import upgrade
from server.db.session import Database
from server.domain.actors import system_actor
from server.domain.connections import create_connection
from server.domain.provider_attributes import allowed_paths, keep_scim
from server.domain.tenants import create_tenant

BATCH = 2000


def prepare(url: str, users: int) -> str:
    """Load ``users`` users into the database at ``url``; returns the SCIM bearer token."""
    database = Database(url)
    upgrade(database.engine)
    with database.session() as session:
        tenant = create_tenant(session, "Bench District")
        issued = create_connection(session, system_actor(tenant.id), "bench-idp", "scim")
        tenant_id, connection_id, token = tenant.id, issued.connection.id, issued.token
        allowed = allowed_paths(session, tenant_id)
    provider = make_provider(None)
    user_type = next(rt for rt in provider.resource_types if rt.name == "User")
    model = provider.model_for(user_type)
    now = utcnow()
    for start in range(0, users, BATCH):
        rows, credentials, values = [], [], []
        for number in range(start, min(users, start + BATCH)):
            user, value_rows = _user_rows(model, number, tenant_id, connection_id, now, allowed)
            rows.append(user)
            credentials.append({"user_id": user["id"], "state": "pending", "updated_at": now})
            values.extend(value_rows)
        with database.engine.begin() as connection:
            connection.execute(insert(User), rows)
            connection.execute(insert(Credential), credentials)
            connection.execute(insert(ScimValue), values)
    with database.engine.begin() as connection:
        if database.engine.dialect.name == "sqlite":
            connection.execute(text("ANALYZE"))
    database.dispose()
    return token


def _user_rows(
    model: Any,
    number: int,
    tenant_id: str,
    connection_id: str,
    now: datetime.datetime,
    allowed: frozenset[str],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The users row and attribute-index rows of user ``number``."""
    # What a SCIM create stores: the document reduced to the attributes the district keeps,
    # and the index of the resource as a read then shows it.
    sent = model.model_validate(user_document(number))
    doc = keep_scim(mapping.document(sent), "User", allowed)
    resource = model.model_validate({**doc, "active": True})
    resource.id = user_id(number)
    resource.meta = {
        "resourceType": "User",
        "created": now,
        "lastModified": now,
        "version": 'W/"1"',
    }
    user = {
        "id": resource.id,
        "tenant_id": tenant_id,
        "connection_id": connection_id,
        "sourced_id": resource.id,
        "external_id": doc["externalId"],
        "external_id_folded": fold(doc["externalId"]),
        "username": doc["userName"],
        "username_folded": fold(doc["userName"]),
        "given_name": doc["name"]["givenName"],
        "family_name": doc["name"]["familyName"],
        "given_folded": fold(doc["name"]["givenName"]),
        "family_folded": fold(doc["name"]["familyName"]),
        "email": doc["userName"],
        "email_folded": fold(doc["userName"]),
        "primary_role": "student",
        "status": "active",
        "extra": {"scim": doc},
        "demographic_flags": {},
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }
    values = [
        {
            "tenant_id": tenant_id,
            "resource_type": "User",
            "resource_id": resource.id,
            "path": value.path,
            "element": value.element,
            "lead": value.lead,
            "present": value.present,
            "text": value.text,
            "number": value.number,
        }
        for value in indexed_values(resource)
    ]
    return user, values


def index_rows(url: str, resource_id: str) -> int:
    """How many attribute-index rows a resource has."""
    database = Database(url)
    try:
        with database.session() as session:
            return int(
                session.scalar(select(func.count()).where(ScimValue.resource_id == resource_id))
                or 0
            )
    finally:
        database.dispose()
