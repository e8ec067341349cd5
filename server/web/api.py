"""The admin JSON API under /admin/api: the same domain calls as the pages, for scripts.

Authenticated by a staff bearer token (``rollcall staff token USERNAME``) or the page session
with an ``X-CSRF-Token`` header. Errors are ``{"error": code, "detail": message, "field": …}``
with the domain error's status.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server import wirejson
from server.db import OAuthClientKind, User
from server.domain import (
    audit,
    completeness,
    connections,
    credentials,
    duplicates,
    oauth,
    password_emails,
    roster_views,
    search,
    subject_access,
    users,
)
from server.domain.actors import Actor
from server.domain.schools import resolve_school_ids
from server.domain.search import UserQuery
from server.domain.users import RoleAssignment
from server.domain.vocabulary import check_texts, parse_date
from server.errors import InvalidValue
from server.web.bodies import check_body
from server.web.openapi import ADMIN_OPENAPI
from server.web.openapi_schemas import USER_TEXT_FIELDS
from server.web.presenters import (
    class_view,
    client_view,
    connection_defaults_view,
    connection_view,
    user_view,
)
from server.web.staffauth import StaffRequest, staff_api

USER_WRITABLE = (*USER_TEXT_FIELDS, "grades")


async def _body(request: Request, schema_name: str) -> dict[str, Any]:
    """The JSON object of the request, checked against its OpenAPI schema (``bodies``)."""
    try:
        data = wirejson.loads(await request.body() or b"{}")
    except ValueError as error:
        raise InvalidValue(f"The request body is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise InvalidValue("The request body must be a JSON object.")
    check_body(data, schema_name)
    check_texts(data)
    return data


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _page(params: Mapping[str, str], default_limit: int) -> tuple[int, int]:
    """``limit`` and ``offset`` of a listing. :raises InvalidValue: not whole numbers."""
    try:
        return int(params.get("limit", default_limit)), int(params.get("offset", 0))
    except ValueError:
        raise InvalidValue("limit and offset must be whole numbers.", field="limit") from None


async def _call(staff: StaffRequest, fn: Any, status: int = 200) -> Response:
    """Run ``fn`` in the request's unit of work and answer its result as JSON; a domain error
    is answered by the app's handler (:mod:`server.web.problems`)."""
    return JSONResponse(await staff.work(fn), status_code=status)


@staff_api
async def list_users(staff: StaffRequest) -> Response:
    params = staff.request.query_params
    limit, offset = _page(params, 50)
    query = UserQuery(
        text=params.get("q", ""),
        role=params.get("role") or None,
        school_id=params.get("school") or None,
        class_id=params.get("class") or None,
        grade=params.get("grade") or None,
        include_inactive=params.get("include_inactive") in ("1", "true"),
        limit=limit,
        offset=offset,
    )

    def load(session: Session, actor: Actor) -> dict[str, Any]:
        found = search.search_users(session, actor, query)
        titles = roster_views.class_titles_of(session, [u.id for u in found.items])
        return {
            "total": found.total,
            "offset": found.offset,
            "limit": found.limit,
            "users": [user_view(u, titles[u.id]) for u in found.items],
        }

    return await _call(staff, load)


@staff_api
async def create_user(staff: StaffRequest) -> Response:
    body = await _body(staff.request, "NewUser")

    def create(session: Session, actor: Actor) -> dict[str, Any]:
        fields = {k: body[k] for k in USER_WRITABLE if k in body}
        schools = resolve_school_ids(session, actor.tenant_id, body.get("schools") or [])
        role = fields.get("primary_role", "student")
        fields["roles"] = [RoleAssignment(org_id, role) for org_id in schools]
        if role == "student":
            duplicates.refuse_duplicates(
                session,
                actor,
                str(fields.get("given_name") or ""),
                str(fields.get("family_name") or ""),
                birth_date=parse_date(_text(fields.get("birth_date")), "birth_date"),
                allow_duplicate=body.get("allow_duplicate") is True,
            )
        user = users.create_user(session, actor, fields)
        result = _user_answer(session, user)
        if body.get("password"):
            credentials.set_password(
                session,
                actor,
                user,
                body["password"],
                temporary=bool(body.get("temporary", True)),
                box=staff.context.box,
            )
        elif body.get("issue_password"):
            result["password"] = credentials.issue_temporary_password(
                session, actor, user, box=staff.context.box
            )
        result["credential_state"] = user.credential.state if user.credential else None
        return result

    return await _call(staff, create, status=201)


@staff_api
async def get_user(staff: StaffRequest) -> Response:
    user_id = staff.request.path_params["user_id"]

    def load(session: Session, actor: Actor) -> dict[str, Any]:
        return _user_answer(session, users.get_user(session, actor, user_id))

    response = await _call(staff, load)
    if response.status_code == 200:
        response.headers["ETag"] = f'W/"{json.loads(bytes(response.body))["version"]}"'
    return response


@staff_api
async def update_user(staff: StaffRequest) -> Response:
    user_id = staff.request.path_params["user_id"]
    body = await _body(staff.request, "UserChange")
    expected = _if_match(staff.request)

    def save(session: Session, actor: Actor) -> dict[str, Any]:
        user = users.get_user(session, actor, user_id)
        fields = {k: body[k] for k in USER_WRITABLE if k in body}
        changes = users.update_user(
            session,
            actor,
            user,
            fields,
            override=bool(body.get("override")),
            expected_version=expected,
        )
        if "active" in body:
            change = users.reactivate_user if body["active"] else users.deactivate_user
            change(session, actor, user, override=bool(body.get("override")))
        return {"user": _user_answer(session, user), "changes": changes}

    return await _call(staff, save)


@staff_api
async def delete_user(staff: StaffRequest) -> Response:
    """``DELETE /admin/api/users/{id}``: district admins delete a user (SPEC §5); 204."""
    user_id = staff.request.path_params["user_id"]
    override = staff.request.query_params.get("override") in ("1", "true")

    def delete(session: Session, actor: Actor) -> None:
        user = users.get_user(session, actor, user_id)
        users.delete_user(session, actor, user, override=override, reason="Deleted by staff.")

    await staff.work(delete)
    return Response(status_code=204)


@staff_api
async def export_user(staff: StaffRequest) -> Response:
    """``GET /admin/api/users/{id}/export``: the subject-access document (district admins)."""
    user_id = staff.request.path_params["user_id"]

    def load(session: Session, actor: Actor) -> dict[str, Any]:
        return subject_access.export_student(session, actor, user_id)

    return await _call(staff, load)


@staff_api
async def reset_password(staff: StaffRequest) -> Response:
    user_id = staff.request.path_params["user_id"]
    body = await _body(staff.request, "PasswordReset")
    temporary = bool(body.get("temporary", True))
    by_email = bool(body.get("email")) and temporary

    def reset(session: Session, actor: Actor) -> dict[str, Any]:
        user = users.get_user(session, actor, user_id)
        typed = body.get("password")
        if by_email:
            password_emails.ensure_mail_configured(bool(staff.context.settings.smtp_url))
        password = credentials.reset_password(
            session, actor, user, box=staff.context.box, temporary=temporary, password=typed
        )
        answer = {
            "user": _user_answer(session, user),
            "password": None if typed else password,
            "temporary": temporary,
        }
        if by_email:
            [sent] = password_emails.email_new_passwords(
                session, actor, [user], issuer=staff.context.settings.issuer
            )
            answer["emailed_to"], answer["not_emailed"] = sent.sent_to, sent.skipped
        return answer

    return await _call(staff, reset)


@staff_api
async def reveal_password(staff: StaffRequest) -> Response:
    user_id = staff.request.path_params["user_id"]

    def reveal(session: Session, actor: Actor) -> dict[str, Any]:
        user = users.get_user(session, actor, user_id)
        password = credentials.reveal_temporary_password(
            session, actor, user, box=staff.context.box
        )
        return {"password": password}

    return await _call(staff, reveal)


@staff_api
async def list_connections(staff: StaffRequest) -> Response:
    def load(session: Session, actor: Actor) -> dict[str, Any]:
        incomplete = completeness.incomplete_counts(session, actor.tenant_id)
        return {
            "connections": [
                {**connection_view(c), **connection_defaults_view(session, c, incomplete)}
                for c in connections.list_connections(session, actor)
            ]
        }

    return await _call(staff, load)


@staff_api
async def create_connection(staff: StaffRequest) -> Response:
    body = await _body(staff.request, "NewConnection")

    def create(session: Session, actor: Actor) -> dict[str, Any]:
        issued = connections.create_connection(
            session,
            actor,
            str(body.get("name", "")),
            str(body.get("kind", "")),
            sso_provider=body.get("sso_provider"),
            profile=body.get("profile"),
            school_sourced_ids=body.get("schools") or [],
            adopt_by=body.get("adopt_by"),
        )
        _set_defaults(session, actor, issued.connection, body)
        incomplete = completeness.incomplete_counts(session, actor.tenant_id)
        return {
            **connection_view(issued.connection),
            **connection_defaults_view(session, issued.connection, incomplete),
            "token": issued.token,
        }

    return await _call(staff, create, status=201)


@staff_api
async def change_connection(staff: StaffRequest) -> Response:
    """PATCH a connection's ``default_role`` / ``default_school`` (null or "" clears)."""
    name = staff.request.path_params["name"]
    body = await _body(staff.request, "ConnectionDefaults")

    def save(session: Session, actor: Actor) -> dict[str, Any]:
        connection = connections.get_connection(session, actor.tenant_id, name)
        changes = _set_defaults(session, actor, connection, body)
        incomplete = completeness.incomplete_counts(session, actor.tenant_id)
        view = {
            **connection_view(connection),
            **connection_defaults_view(session, connection, incomplete),
        }
        return {"connection": view, "changes": changes}

    return await _call(staff, save)


def _set_defaults(
    session: Session, actor: Actor, connection: Any, body: dict[str, Any]
) -> dict[str, list[Any]]:
    options: dict[str, Any] = {}
    for key, option in (("default_role", "role"), ("default_school", "school_sourced_id")):
        if key in body:  # the body's types are checked against ConnectionDefaults
            options[option] = body[key]
    if not options:
        return {}
    return completeness.set_defaults(session, actor, connection, **options)


@staff_api
async def rotate_connection_token(staff: StaffRequest) -> Response:
    name = staff.request.path_params["name"]

    def rotate(session: Session, actor: Actor) -> dict[str, Any]:
        issued = connections.rotate_token(session, actor, name)
        return {**connection_view(issued.connection), "token": issued.token}

    return await _call(staff, rotate)


@staff_api
async def audit_events(staff: StaffRequest) -> Response:
    params = staff.request.query_params

    def load(session: Session, actor: Actor) -> dict[str, Any]:
        limit, offset = _page(params, 100)
        events = audit.search_events(
            session,
            actor,
            target_id=params.get("target") or None,
            actor_name=params.get("actor") or None,
            action=params.get("action") or None,
            limit=limit,
            offset=offset,
        )
        return {
            "events": [
                {
                    "id": e.id,
                    "at": e.at.isoformat(),
                    "actor": e.actor_name,
                    "actor_kind": e.actor_kind,
                    "via": e.via,
                    "action": e.action,
                    "target_kind": e.target_kind,
                    "target_id": e.target_id,
                    "target": e.target_label,
                    "changes": e.changes,
                    "detail": e.detail,
                    "override": e.override,
                }
                for e in events
            ]
        }

    return await _call(staff, load)


async def openapi(request: Request) -> Response:
    return JSONResponse(ADMIN_OPENAPI)


def _if_match(request: Request) -> int | None:
    header = request.headers.get("if-match")
    if not header or header.strip() == "*":
        return None
    digits = header.strip().removeprefix("W/").strip('"')
    if not digits.isdigit():
        raise InvalidValue('If-Match must be an ETag from this API, such as W/"3".')
    return int(digits)


@staff_api
async def list_clients(staff: StaffRequest) -> Response:
    def load(session: Session, actor: Actor) -> dict[str, Any]:
        return {"clients": [client_view(c) for c in oauth.list_clients(session, actor)]}

    return await _call(staff, load)


@staff_api
async def create_client(staff: StaffRequest) -> Response:
    body = await _body(staff.request, "NewClient")

    def create(session: Session, actor: Actor) -> dict[str, Any]:
        kind = str(body.get("kind") or OAuthClientKind.OIDC)
        if kind not in (OAuthClientKind.OIDC, OAuthClientKind.API):
            raise InvalidValue("kind must be oidc or api.", field="kind")
        made = oauth.create_client(
            session,
            actor,
            str(body.get("name") or ""),
            kind=kind,
            redirect_uris=_strings(body, "redirect_uris"),
            post_logout_redirect_uris=_strings(body, "post_logout_redirect_uris"),
            public=bool(body.get("public")),
            scopes=_strings(body, "scopes")
            or (oauth.DEFAULT_ONEROSTER_SCOPES if kind == OAuthClientKind.API else None),
            school_sourced_ids=_strings(body, "schools"),
        )
        return {**client_view(made.client), "client_secret": made.secret}

    return await _call(staff, create, status=201)


@staff_api
async def list_classes(staff: StaffRequest) -> Response:
    school = staff.request.query_params.get("school") or None

    def load(session: Session, actor: Actor) -> dict[str, Any]:
        classes = roster_views.list_classes(session, actor, school_id=school)
        return {"classes": [class_view(c) for c in classes]}

    return await _call(staff, load)


@staff_api
async def class_students(staff: StaffRequest) -> Response:
    class_id = staff.request.path_params["class_id"]

    def load(session: Session, actor: Actor) -> dict[str, Any]:
        klass = roster_views.get_class(session, actor, class_id)
        members = roster_views.class_members(session, actor, klass, role="student")
        return {"class": class_view(klass), "students": [user_view(u) for u in members]}

    return await _call(staff, load)


def _user_answer(session: Session, user: User) -> dict[str, Any]:
    """A user as every endpoint shows it, classes included (GET and PATCH agree)."""
    return user_view(user, roster_views.class_titles_of(session, [user.id])[user.id])


def _strings(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidValue(f"{key} must be a list of strings.", field=key)
    return value
