"""Every route of the assembled app refuses a caller without its credential, unless it is meant
to be public (issue 11: the route-table test).

The walk covers ``create_app``'s whole route table, so a route added later without a guard
fails here until it is guarded or listed in ``PUBLIC`` with the reason it is public. Mounted
ASGI apps have no route table of their own to walk: each is listed in ``MOUNTED`` with the
requests that cover it, and an unlisted mount fails the test.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route
from starlette.testclient import TestClient

from server.app import create_app
from server.domain import connections, roster, users
from server.domain.actors import system_actor
from server.domain.tenants import create_tenant
from server.domain.users import RoleAssignment

# (method, path template) -> why anyone may call it without a credential.
PUBLIC = {
    ("GET", "/healthz"): "load balancers probe it; it says only up or down",
    ("GET", "/.well-known/openid-configuration"): "OIDC discovery is public by definition",
    ("GET", "/oauth/jwks"): "public signing keys",
    ("GET", "/oauth/authorize"): "starts a sign-in: redirects to /login",
    ("POST", "/oauth/authorize"): "starts a sign-in: redirects to /login",
    ("GET", "/oauth/logout"): "RP-initiated logout ends the caller's own session",
    ("POST", "/oauth/logout"): "RP-initiated logout ends the caller's own session",
    ("GET", "/login"): "the student sign-in page",
    ("POST", "/login"): "the password is the credential",
    ("GET", "/login/badge"): "the badge sign-in page",
    ("POST", "/login/badge"): "the badge is the credential",
    ("GET", "/login/change"): "needs a must-change session, else redirects to /login",
    ("POST", "/login/change"): "needs a must-change session, else redirects to /login",
    ("GET", "/login/done"): "needs a session, else redirects to /login",
    ("GET", "/login/upstream/{connection}"): "starts a sign-in at the district's provider",
    ("GET", "/login/upstream/callback"): "the provider's answer, opened only by the flow cookie",
    ("GET", "/activate/{token}"): "the one-time token in the path is the credential",
    ("POST", "/activate/{token}"): "the one-time token in the path is the credential",
    ("GET", "/admin"): "redirects to the staff pages",
    ("GET", "/admin/"): "redirects to the staff pages",
    ("GET", "/admin/login"): "the staff sign-in page",
    ("POST", "/admin/login"): "the password is the credential",
    ("POST", "/admin/logout"): "ends the caller's own session",
    ("GET", "/admin/import/template.csv"): "an empty template with column headers only",
    ("GET", "/admin/import/codes.json"): "the import status codes of SPEC §10, no data",
    ("GET", "/admin/api/openapi.json"): "API description, no data",
    ("GET", "/scim/v2/openapi.json"): "API description, no data",
    ("GET", "/ims/oneroster/openapi.json"): "API description, no data",
    (
        "GET",
        "/scim/v2/ServiceProviderConfig",
    ): "RFC 7644 §4 feature list (scim2-server's needs_auth)",
    ("GET", "/ims/oneroster/{rest:path}"): "answers 404 for unknown OneRoster paths",
    ("GET", "/admin/static"): "stylesheet and script",
}
MOUNTED = {
    "/scim": [
        ("GET", "/scim/v2/Users"),
        ("POST", "/scim/v2/Users"),
        ("GET", "/scim/v2/Users/{user_id}"),
        ("PUT", "/scim/v2/Users/{user_id}"),
        ("PATCH", "/scim/v2/Users/{user_id}"),
        ("DELETE", "/scim/v2/Users/{user_id}"),
        ("GET", "/scim/v2/Groups"),
        ("POST", "/scim/v2/.search"),
        ("POST", "/scim/v2/Bulk"),
        ("GET", "/scim/v2/ServiceProviderConfig"),
        ("GET", "/scim/v2/Schemas"),
        ("GET", "/scim/v2/ResourceTypes"),
    ],
    "/admin/static": [("GET", "/admin/static")],
}
SIGN_IN_PAGES = ("/admin/login", "/login")


def _routes(routes: list[BaseRoute]) -> list[tuple[str, str]]:
    """(method, path template) of every route; mounts expand to their listed requests."""
    found = []
    for route in routes:
        if isinstance(route, Mount):
            assert route.path in MOUNTED, f"mount {route.path} is not covered by MOUNTED"
            found += MOUNTED[route.path]
        elif isinstance(route, Route):
            found += [(m, route.path) for m in sorted(route.methods or ()) if m != "HEAD"]
    return found


def _concrete(template: str, ids: dict[str, str]) -> str:
    path = (
        template.replace("{rest:path}", "nothing/here").replace(":str}", "}").replace(":path}", "}")
    )
    for name, value in ids.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"no sample value for a parameter of {template}"
    return path


def _answered_without_credential(response) -> bool:
    """A success, or a redirect anywhere but a sign-in page."""
    if response.status_code >= 400:
        return False
    if response.is_redirect:
        return not response.headers["location"].startswith(SIGN_IN_PAGES)
    return True


def _sample_ids(database) -> dict[str, str]:
    """Real records, so a refusal is the guard at work and not a 404 for a made-up id."""
    with database.session() as session:
        tenant = create_tenant(session, "Springfield")
        actor = system_actor(tenant.id)
        school = roster.create_org(session, actor, {"name": "Lincoln", "sourced_id": "lincoln"})
        klass = roster.create_class(session, actor, {"title": "Maths", "school_id": school.id})
        fields = {"given_name": "Bart", "family_name": "Simpson"}
        user = users.create_user(
            session, actor, {**fields, "roles": [RoleAssignment(school.id, "student")]}
        )
        connections.create_connection(session, actor, "Okta", "scim")
        return {
            "user_id": user.id,
            "sourced_id": user.sourced_id,
            "parent_id": school.sourced_id,
            "school_id": school.sourced_id,
            "class_id": klass.id,
            "name": "Okta",
            "run_id": "no-such-run",
            "request_id": "no-such-request",
            "decision": "approve",
            "token": "not-a-live-token",
            "connection": "no-such-connection",
        }


def _open_routes(app, database) -> list[str]:
    ids = _sample_ids(database)
    client = TestClient(app, follow_redirects=False)
    open_routes = []
    for method, template in _routes(app.routes):
        if (method, template) in PUBLIC:
            continue
        response = client.request(method, _concrete(template, ids), json={})
        assert response.status_code < 500, (method, template, response.text[:200])
        if _answered_without_credential(response):
            open_routes.append(f"{method} {template} -> {response.status_code}")
    return open_routes


def test_every_route_refuses_a_caller_without_its_credential(settings, database):
    app = create_app(settings, database=database)
    with TestClient(app):
        assert _open_routes(app, database) == []
    assert len(_routes(app.routes)) > 150  # the walk saw the whole app


def test_the_walk_catches_a_route_added_without_a_guard(settings, database):
    from starlette.responses import JSONResponse

    app = create_app(settings, database=database)
    app.router.routes.append(Route("/admin/api/leak", lambda request: JSONResponse([])))
    with TestClient(app):
        assert _open_routes(app, database) == ["GET /admin/api/leak -> 200"]
