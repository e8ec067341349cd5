"""The SCIM write handler: the write unit of work holds only the storage steps (issue 15).

scim2-server's ``ScimHandler`` serves a create as: read and validate the body, store the
resource, build the answer. Run inside one unit of work, the whole request held the database's
write lock (SQLite takes one writer at a time: ``server.db.session.Database.session``),
pydantic's validation of the body and the serialisation of the answer included; a PATCH that
adds one member to a group of 5,000 held it while 5,000 members were dumped to JSON.

:class:`RollcallHandler` opens the write unit of work around the storage steps only, for the
two writes identity providers send most: create (RFC 7644 §3.3) and PATCH (§3.5.2). The
body is validated before it, the answer built after its commit, from the resource the
storage returned (nothing is read again). The read-modify-write of a PATCH (read the
resource, check ``If-Match``, apply the operations, store) stays in one unit of work. Every
other operation runs whole inside one, as before.

>>> handler = RollcallHandler(service, storage, unit_of_work)  # doctest: +SKIP
>>> handler.handle(request)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import cast

from scim2_server.handler import ScimHandler
from scim2_server.requests import ScimRequest
from scim2_server.responses import ScimResponse
from scim2_server.routing import Operation
from scim2_server.service import ScimService
from scim2_server.storage import ScimStorage

UnitOfWork = Callable[[], AbstractContextManager[object]]


class RollcallHandler(ScimHandler):
    """scim2-server's handler, each request in a write unit of work of ``unit_of_work()``."""

    def __init__(self, service: ScimService, storage: ScimStorage, unit_of_work: UnitOfWork):
        super().__init__(service, storage)
        self.unit_of_work = unit_of_work

    def handle(self, request: ScimRequest) -> ScimResponse:
        with self.service.provider:
            operation = self.service.match(request).operation
        if operation in (Operation.create, Operation.patch):
            return cast(ScimResponse, getattr(self, operation.value)(request))
        with self.unit_of_work():
            return super().handle(request)

    def create(self, request: ScimRequest) -> ScimResponse:
        """Create a resource (RFC 7644 §3.3): only storing it holds the write lock."""
        with self.service.provider:
            target = self.service.route(request, Operation.create)
            resource_type = self.service.resource_type_at(cast(str, target.endpoint))
            self.service.authorize(request, target, resource_type)
            resource = self.service.read_creation(
                resource_type, request.body, request.header("Content-Type")
            )
            with self.unit_of_work(), self.storage.operation():
                created = self.storage.create(resource_type, resource)
            return self.service.creation_response(request.base_url, created)

    def patch(self, request: ScimRequest) -> ScimResponse:
        """Modify a resource (RFC 7644 §3.5.2): the read, the check of its version, the
        operations and the write in one unit of work; parsing and answering outside it."""
        with self.service.provider:
            target = self.service.route(request, Operation.patch)
            resource_type = self.service.resource_type_at(cast(str, target.endpoint))
            self.service.authorize(request, target, resource_type)
            response_parameters = self.service.read_response_parameters(
                resource_type, request.query
            )
            patch_op = self.service.read_patch(
                resource_type, request.body, request.header("Content-Type")
            )
            conditions = self.service.read_conditions(request)
            with self.unit_of_work(), self.storage.operation():
                resource = self.patch_resource(
                    resource_type, cast(str, target.resource_id), patch_op, conditions
                )
            response = self.service.patch_response(request.base_url, resource, response_parameters)
            return self.service.me_response(request, target, response)
