"""The baseline of the SCIM benchmark: python-scim's ``scim2-server`` reference application.

    python -m bench.reference --port 8081 --users 20000

Its ASGI application (``scim2_server.applications.asgi.ASGIApplication``) over the in-memory
storage (``AsyncInMemoryStorage``, which keeps every resource in process memory and indexes
``eq`` on single string attributes), with the library's default schemas, resource types and
service provider configuration, served by uvicorn the way ``rollcall serve`` serves Rollcall
(one process, no access log). Before serving it stores ``--users`` users shaped like the ones
:mod:`bench.scim` loads into Rollcall, with ids derived from their externalId
(:func:`bench.scim_data.user_id`), so one client script drives both servers.
"""

from __future__ import annotations

import argparse
import uuid
from typing import Any

import uvicorn
from scim2_models import Resource, ResourceType
from scim2_server.applications.asgi import ASGIApplication
from scim2_server.memory import AsyncInMemoryStorage, InMemoryStorage
from scim2_server.service import ScimService
from scim2_server.utils import load_default_provider

from bench.scim_data import USER_ID_NAMESPACE, user_document


class PredictableStorage(InMemoryStorage):
    """The in-memory storage, with ids the benchmark client can compute from the externalId."""

    def generate_id(self, resource_type: ResourceType, resource: Resource[Any]) -> str:
        external_id = getattr(resource, "external_id", None)
        if external_id:
            return str(uuid.uuid5(USER_ID_NAMESPACE, external_id))
        return super().generate_id(resource_type, resource)


def build(users: int) -> ASGIApplication:
    """The reference application holding ``users`` users."""
    provider = load_default_provider()
    storage = PredictableStorage()
    user_type = next(rt for rt in provider.resource_types if rt.name == "User")
    model = provider.model_for(user_type)
    for number in range(users):
        storage.create(user_type, model.model_validate(user_document(number)))
    service = ScimService(provider, secret="bench-reference-secret")
    return ASGIApplication(AsyncInMemoryStorage(storage), provider, service)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--users", type=int, default=1000)
    args = parser.parse_args()
    app = build(args.users)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        proxy_headers=False,
        access_log=False,
        log_config=None,
    )


if __name__ == "__main__":
    main()
