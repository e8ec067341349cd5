"""Talking to /scim/v2 as an identity provider does."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from server.db.session import Database
from server.domain.actors import system_actor
from server.domain.district_settings import change_settings

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
EDU_USER = "urn:rollcall:params:scim:schemas:extension:education:2.0:User"
EDU_GROUP = "urn:rollcall:params:scim:schemas:extension:education:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

# Every attribute of RFC 7643 §4.1 (core User) and §4.3 (the enterprise extension) that Rollcall
# does not use itself: a district that keeps them all (its allow-list, issue 12 item 1), for the
# tests of the SCIM protocol itself (filters, sorting, PATCH paths on any attribute).
EVERY_USER_ATTRIBUTE = [
    "displayName",
    "nickName",
    "profileUrl",
    "title",
    "preferredLanguage",
    "locale",
    "timezone",
    "name",
    "phoneNumbers",
    "ims",
    "photos",
    "addresses",
    "entitlements",
    "x509Certificates",
    ENTERPRISE,
]


def keep_every_attribute(session: Session, tenant_id: str) -> None:
    """Set the district's allow-list to :data:`EVERY_USER_ATTRIBUTE`."""
    change_settings(
        session, system_actor(tenant_id), {"keep_provider_attributes": EVERY_USER_ATTRIBUTE}
    )


class IdP:
    """An identity provider's SCIM client: one bearer token, JSON in and out."""

    def __init__(self, client: TestClient, token: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.request(method, f"/scim/v2{path}", headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any, **kwargs: Any) -> Any:
        return self.request("POST", path, json=body, **kwargs)

    def put(self, path: str, body: Any, **kwargs: Any) -> Any:
        return self.request("PUT", path, json=body, **kwargs)

    def patch(self, path: str, *operations: dict[str, Any], **kwargs: Any) -> Any:
        return self.request(
            "PATCH", path, json={"schemas": [PATCH], "Operations": list(operations)}, **kwargs
        )

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)

    def create_user(self, user_name: str, **attributes: Any) -> dict[str, Any]:
        body = {"schemas": [USER], "userName": user_name, **attributes}
        response = self.post("/Users", body)
        assert response.status_code == 201, response.text
        return response.json()

    def create_group(
        self, display_name: str, members: list[str], **attributes: Any
    ) -> dict[str, Any]:
        body = {
            "schemas": [GROUP],
            "displayName": display_name,
            "members": [{"value": member} for member in members],
            **attributes,
        }
        response = self.post("/Groups", body)
        assert response.status_code == 201, response.text
        return response.json()


@contextmanager
def statements(database: Database) -> Iterator[list[str]]:
    """The SQL statements the database runs inside the block (to count queries, not time)."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(database.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(database.engine, "before_cursor_execute", record)


@contextmanager
def executed(database: Database) -> Iterator[list[tuple[str, Any]]]:
    """The SQL statements the database runs inside the block, with their parameters."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        seen.append((statement, parameters))

    event.listen(database.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(database.engine, "before_cursor_execute", record)
