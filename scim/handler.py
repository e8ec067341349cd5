"""The SCIM write handler: the write unit of work holds only the storage steps (issue 15).

scim2-server's ``ScimHandler`` serves a create as: read and validate the body, store the
resource, build the answer. Run inside one unit of work, the whole request held the database's
write lock (SQLite takes one writer at a time: ``server.db.session.Database.session``),
pydantic's validation of the body and the serialisation of the answer included; a PATCH that
adds one member to a group of 5,000 held it while 5,000 members were dumped to JSON.

:class:`RollcallHandler` opens the write unit of work around the storage steps only, for the
two writes identity providers send most: create (RFC 7644 §3.3) and PATCH (§3.5.2). The
body is validated (and a created user's document dumped) before it, the answer built after
its commit, from the resource the storage returned (nothing is read again). The
read-modify-write of a PATCH (read the resource, check ``If-Match``, apply the operations,
store) stays in one unit of work. Every other operation runs whole inside one, as before.

A created user, and a user whose ``active`` alone a PATCH replaced, are answered with
:func:`scim.lookups.user_response`: the representation (:func:`scim.mapping.user_json`) of the
user as stored, published as the engine publishes it, without validating it into a pydantic
resource and dumping it again. These requests run without a savepoint: the unit of work holds
only them, and its rollback undoes a failed one (a Bulk request keeps one per operation).

>>> handler = RollcallHandler(service, storage, unit_of_work)  # doctest: +SKIP
>>> handler.handle(request)  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from http import HTTPStatus
from typing import Any, cast

from pydantic import TypeAdapter, ValidationError
from scim2_models import PatchOp, ResourceType
from scim2_server.handler import ScimHandler
from scim2_server.requests import ScimRequest
from scim2_server.responses import ScimResponse
from scim2_server.routing import Operation, Target
from scim2_server.service import ScimService

from scim.lookups import user_response
from scim.mapping import document
from scim.members import (
    Step,
    change_members,
    match_members_by_value,
    member_steps,
    published_group,
)
from scim.storage import RollcallStorage
from server.db import Group

UnitOfWork = Callable[..., AbstractContextManager[object]]
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
CONDITIONAL = ("If-Match", "If-None-Match")


class PatchService(ScimService):
    """scim2-server's service, reading a PATCH body that the handler decoded already
    (:class:`RequestBody`) without decoding it again, and matching removed members by
    ``value`` (:func:`scim.members.match_members_by_value`)."""

    def read_patch(
        self, resource_type: ResourceType, body: bytes, content_type: str | None
    ) -> PatchOp[Any]:
        decoded = self.decode_body(body, content_type)
        return self.read_decoded_patch(resource_type, body, content_type, decoded)

    def read_decoded_patch(
        self, resource_type: ResourceType, body: bytes, content_type: str | None, decoded: Any
    ) -> PatchOp[Any]:
        """:meth:`read_patch` of ``body``, already decoded as ``decoded``. The body is still
        validated as JSON (pydantic's JSON mode reads base64 binaries, its Python mode does
        not), so only a body whose member removals are rewritten is encoded again."""
        rewritten = match_members_by_value(decoded)
        if rewritten is not decoded:
            body = json.dumps(rewritten).encode()
        return super().read_patch(resource_type, body, content_type)


class RollcallHandler(ScimHandler):
    """scim2-server's handler, each request in a write unit of work of ``unit_of_work()``."""

    service: PatchService
    storage: RollcallStorage

    def __init__(self, service: PatchService, storage: RollcallStorage, unit_of_work: UnitOfWork):
        super().__init__(service, storage)
        self.unit_of_work = unit_of_work

    def handle(self, request: ScimRequest) -> ScimResponse:
        with self.service.provider:
            operation = self.service.match(request).operation
        if operation in (Operation.create, Operation.patch):
            return cast(ScimResponse, getattr(self, operation.value)(request))
        if operation == Operation.bulk:
            # the token is checked without the write lock, so a busy database is each
            # operation's 503 (RFC 7644 §3.7.3), not the request's
            with self.unit_of_work(read_only=True):
                pass
            with self.unit_of_work(admitted=True):
                return super().handle(request)
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
            if resource_type.name == "User":  # answered from the view of the stored user
                # dumped before the write lock: only the storage steps hold it
                doc = document(resource)
                # the token is checked by the read of the connection that owns the user
                with self.unit_of_work(admitted=True), self.storage.operation(savepoint=False):
                    user = self.storage.create_user(
                        resource_type, resource, admit=True, document=doc
                    )
                return user_response(self.service, request.base_url, user, HTTPStatus.CREATED)
            with self.unit_of_work(), self.storage.operation(savepoint=False):
                created = self.storage.create(resource_type, resource)
            return self.service.creation_response(request.base_url, created)

    def patch(self, request: ScimRequest) -> ScimResponse:
        """Modify a resource (RFC 7644 §3.5.2): the read, the check of its version, the
        operations and the write in one unit of work; parsing and answering outside it."""
        with self.service.provider:
            target = self.service.route(request, Operation.patch)
            resource_type = self.service.resource_type_at(cast(str, target.endpoint))
            self.service.authorize(request, target, resource_type)
            body = RequestBody(self.service, request)  # decoded once, by what reads it first
            active = self._active_only(request, resource_type.name, body)
            if active is not None:  # the token is checked in the read of the user
                with self.unit_of_work(admitted=True), self.storage.operation(savepoint=False):
                    user = self.storage.set_active(
                        resource_type, cast(str, target.resource_id), active
                    )
                response = user_response(self.service, request.base_url, user)
                return self.service.me_response(request, target, response)
            response_parameters = self.service.read_response_parameters(
                resource_type, request.query
            )
            patch_op = self.service.read_decoded_patch(
                resource_type, request.body, request.header("Content-Type"), body.decoded()
            )
            conditions = self.service.read_conditions(request)
            steps = self._member_steps(request, resource_type.name, body.decoded())
            with self.unit_of_work(), self.storage.operation(savepoint=False):
                resource_id = cast(str, target.resource_id)
                changed = None
                if steps is not None:  # a change of members only: without the engine
                    changed = change_members(self.storage, resource_type, resource_id, steps)
                if changed is None:
                    resource = self.patch_resource(resource_type, resource_id, patch_op, conditions)
                    whole = not (
                        response_parameters.attributes or response_parameters.excluded_attributes
                    )
                    view = self.storage.stored_view(resource) if whole else None
            if changed is not None:  # answered outside the write unit of work, as every PATCH
                return self._members_response(request, target, *changed)
            if view is not None:
                response = user_response(self.service, request.base_url, view)
            else:
                response = self.service.patch_response(
                    request.base_url, resource, response_parameters
                )
            return self.service.me_response(request, target, response)

    def _member_steps(
        self, request: ScimRequest, resource_type: str | None, body: Any
    ) -> list[Step] | None:
        """The steps of a PATCH (its decoded ``body``) that only adds and removes members of a
        group by ``value`` (:func:`scim.members.member_steps`), with no query and no
        condition; else ``None``."""
        if resource_type != "Group" or request.query:
            return None
        if any(request.header(name) is not None for name in CONDITIONAL):
            return None
        return member_steps(match_members_by_value(body))

    def _members_response(
        self, request: ScimRequest, target: Target, group: Group, doc: dict[str, Any]
    ) -> ScimResponse:
        """The answer to :func:`scim.members.change_members`, with the engine's headers."""
        body = published_group(self.service, request.base_url, group, doc)
        headers = {"Content-Location": body["meta"]["location"], "ETag": body["meta"]["version"]}
        return self.service.me_response(request, target, ScimResponse(HTTPStatus.OK, body, headers))

    def _active_only(
        self, request: ScimRequest, resource_type: str | None, body: RequestBody
    ) -> bool | None:
        """The new ``active`` of a user when the PATCH replaces only that, with no query and
        no condition (the (de)activation Entra ID and Okta send); else ``None``: the engine."""
        if resource_type != "User" or request.query:
            return None
        if any(request.header(name) is not None for name in CONDITIONAL):
            return None
        try:
            decoded = body.decoded()
        except Exception:  # the engine answers it with its own error, in its turn
            return None
        return active_replacement(decoded)


class RequestBody:
    """A request's JSON body, decoded (``ScimService.decode_body``) once for every step that
    reads it: the checks for the fast paths and the engine's validation decoded it each
    (review finding, issue 15). A body that cannot be decoded raises the same error to
    each step that asks, so the engine's answer to it is unchanged."""

    def __init__(self, service: ScimService, request: ScimRequest) -> None:
        self.service = service
        self.request = request
        self.outcome: tuple[Any, Exception | None] | None = None

    def decoded(self) -> Any:
        """The decoded body.

        :raises SCIMException: not JSON, or not sent as JSON (``decode_body``'s errors)."""
        if self.outcome is None:
            try:
                content_type = self.request.header("Content-Type")
                self.outcome = (self.service.decode_body(self.request.body, content_type), None)
            except Exception as refused:  # kept: raised to each step that asks
                self.outcome = (None, refused)
        value, error = self.outcome
        if error is not None:
            raise error
        return value


def active_replacement(body: Any) -> bool | None:
    """The value of ``active`` a PATCH body sets, when that is all it does (RFC 7644
    §3.5.2.3, with a ``path`` or as the attribute of a ``value``): a JSON boolean, or a string
    the engine reads as one (:func:`boolean_of`: Entra ID sends ``"value": "False"``).

    >>> active_replacement({"schemas": [PATCH_OP],
    ...     "Operations": [{"op": "Replace", "path": "active", "value": False}]})
    False
    >>> active_replacement({"schemas": [PATCH_OP],
    ...     "Operations": [{"op": "replace", "value": {"active": True}}]}) is True
    True
    >>> active_replacement({"schemas": [PATCH_OP],
    ...     "Operations": [{"op": "Replace", "path": "active", "value": "False"}]})
    False
    """
    if not isinstance(body, dict) or body.get("schemas") != [PATCH_OP] or len(body) != 2:
        return None
    operations = body.get("Operations")
    if not isinstance(operations, list) or len(operations) != 1:
        return None
    [operation] = operations
    if not isinstance(operation, dict) or str(operation.get("op")).lower() != "replace":
        return None
    value = operation.get("value")
    if set(operation) == {"op", "path", "value"} and operation["path"] == "active":
        active = value
    elif set(operation) == {"op", "value"} and isinstance(value, dict) and set(value) == {"active"}:
        active = value["active"]
    else:
        return None
    return boolean_of(active)


_BOOLEAN: TypeAdapter[bool] = TypeAdapter(bool)


def boolean_of(value: Any) -> bool | None:
    """A JSON boolean, or a string read as the engine reads the value of a boolean attribute
    (pydantic's lax mode: ``"False"``, ``"false"``, ``"0"``, ``"no"``…); else ``None``: the
    engine's to answer (a number, or a string it refuses).

    >>> boolean_of("False"), boolean_of("yes"), boolean_of("maybe"), boolean_of(0)
    (False, True, None, None)
    """
    if isinstance(value, bool):
        return value
    if not isinstance(value, str):
        return None
    try:
        return _BOOLEAN.validate_python(value)
    except ValidationError:
        return None
