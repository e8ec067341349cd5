"""The users of the SCIM benchmark, identical on both servers (no Rollcall imports here, so
the reference server's memory holds only the library and its users).

User ``n`` has userName ``user{n:06d}@bench.example``, externalId ``ext-{n:06d}`` and the id
``uuid5(USER_ID_NAMESPACE, externalId)``, so the client computes any user's id without asking.
"""

from __future__ import annotations

import uuid
from typing import Any

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER_ID_NAMESPACE = uuid.UUID("6f1c2a6e-1d8b-4c59-9a51-0b9f0a3b2c10")
GIVEN = ["Ava", "Ben", "Chloe", "Dev", "Ella", "Finn", "Grace", "Hugo", "Isla", "Jack", "Kai"]
FAMILY = ["Smith", "Jones", "Patel", "Nguyen", "Garcia", "Khan", "Brown", "Taylor", "Lopez"]


def user_name(number: int) -> str:
    return f"user{number:06d}@bench.example"


def external_id(number: int) -> str:
    return f"ext-{number:06d}"


def user_id(number: int) -> str:
    return str(uuid.uuid5(USER_ID_NAMESPACE, external_id(number)))


def user_document(number: int) -> dict[str, Any]:
    """What an identity provider sends to create user ``number`` (an Entra-like shape)."""
    given, family = GIVEN[number % len(GIVEN)], FAMILY[(number // 7) % len(FAMILY)]
    return {
        "schemas": [USER_SCHEMA],
        "userName": user_name(number),
        "externalId": external_id(number),
        "name": {"givenName": given, "familyName": family},
        "displayName": f"{given} {family}",
        "emails": [{"value": user_name(number), "type": "work", "primary": True}],
        "active": True,
    }
