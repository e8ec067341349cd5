"""District SSO sign-in (issue 17): a second Rollcall on 127.0.0.1 plays the district's provider.

The upstream is a real OpenID Connect provider with its own SQLite database: it has the
student Milhouse and a client registered with Rollcall's one callback. Here, the SSO connection
"Clever" provisioned Milhouse's twin with the upstream ``sub`` as its SCIM ``externalId``. The
browser is scripted: the TestClient plays it towards this Rollcall, an ``httpx.Client`` with its
own cookies towards the upstream.
"""

from __future__ import annotations

import io
import json
import re
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select

from server.cli.main import main
from server.db import AuditEvent, BrowserSession
from server.domain import users
from server.domain.actors import system_actor
from tests.oidc.conftest import (
    ISSUER,
    authorize_url,
    exchange,
    query_of,
    sign_in,
    verify_id_token,
)
from tests.oidc.upstream_provider import (
    CALLBACK,
    MILHOUSE_PASSWORD,
    Broker,
    Upstream,
    box_key,
    provision_twin,
    upstream_fixture,  # noqa: F401 (fixture 'upstream')
)


@pytest.fixture
def broker(database, box, district, upstream) -> Broker:
    return provision_twin(database, box, district, upstream)


def button_of(html: str, provider: str) -> str:
    match = re.search(r'<a class="button upstream" href="([^"]+)">Sign in with ' + provider, html)
    assert match, html
    return match.group(1).replace("&amp;", "&")


def to_upstream(http, district, **extra: str) -> tuple[str, str]:
    """Start at the app, press "Sign in with Clever": (upstream authorize URL, Rollcall state)."""
    start = http.get(authorize_url(district.client_id, **extra))
    login = http.get(start.headers["location"])
    assert login.status_code == 200
    leave = http.get(button_of(login.text, "Clever"))
    assert leave.status_code == 303, leave.text
    assert leave.headers["location"].startswith("http://127.0.0.1:")
    return leave.headers["location"], start.headers["location"]


def sign_in_upstream(upstream: Upstream, authorize: str, password: str = MILHOUSE_PASSWORD) -> str:
    """The student at the upstream: sign in there; returns where it sends the browser back."""
    with httpx.Client(base_url=upstream.url, follow_redirects=False) as browser:
        first = browser.get(authorize)
        assert first.status_code == 302, first.text
        done = sign_in(browser, first.headers["location"], "milhouse", password)
        assert done.status_code == 303, done.text
        back = browser.get(done.headers["location"])
        assert back.status_code == 302, back.text
        return back.headers["location"]


def come_back(http, callback: str):
    assert callback.startswith(CALLBACK), callback
    parts = urlsplit(callback)
    return http.get(f"{parts.path}?{parts.query}")


def test_sso_student_signs_in_through_the_district_provider(
    http, district, upstream, broker, database
):
    authorize, _login = to_upstream(http, district, nonce="app-nonce")
    params = query_of(authorize)
    assert params["code_challenge_method"] == "S256" and params["nonce"] and params["state"]
    assert params["redirect_uri"] == CALLBACK
    home = come_back(http, sign_in_upstream(upstream, authorize))
    assert home.status_code == 303, home.text
    assert home.headers["location"].startswith("/oauth/authorize?")
    back = http.get(home.headers["location"])
    assert back.status_code == 302, back.text
    code = query_of(back.headers["location"])["code"]
    tokens = exchange(http, district, code).json()
    claims = verify_id_token(http, tokens["id_token"])
    assert claims["sub"] == broker.twin_id
    assert claims["nonce"] == "app-nonce"
    assert claims["amr"] == ["fed"]
    assert claims["acr"] == upstream.url
    with database.session() as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "signin.success")
        ).one()
        assert upstream.url in event.detail and upstream.milhouse_id in event.detail


def signed_in_subject(http, district, upstream: Upstream) -> str:
    """Sign in through the upstream end to end; the ``sub`` of Rollcall's ID token."""
    authorize, _ = to_upstream(http, district)
    home = come_back(http, sign_in_upstream(upstream, authorize))
    assert home.status_code == 303, home.text
    code = query_of(http.get(home.headers["location"]).headers["location"])["code"]
    return verify_id_token(http, exchange(http, district, code).json()["id_token"])["sub"]


def test_sub_matches_the_oneroster_user_ids_entry_of_the_provider(
    http, district, upstream, database, box
):
    # OneRoster CSV 1.2 userIds form "{type:identifier}" (users.csv), type = the provider name.
    user_ids = ["{Google:g-123}", "{Clever:" + upstream.milhouse_id + "}"]
    twin = {"external_id": None, "extra": {"userIds": user_ids}}
    broker = provision_twin(database, box, district, upstream, twin=twin)
    assert signed_in_subject(http, district, upstream) == broker.twin_id


def test_preferred_username_can_be_the_link_claim(http, district, upstream, database, box):
    twin = {"username": "milhouse", "external_id": "not-the-sub"}
    broker = provision_twin(
        database, box, district, upstream, twin=twin, link_claim="preferred_username"
    )
    assert signed_in_subject(http, district, upstream) == broker.twin_id


def test_set_upstream_on_the_command_line_then_sign_in(
    http, district, upstream, database, box, monkeypatch, tmp_path, database_url, capsys
):
    broker = provision_twin(database, box, district, upstream, configure=False)
    monkeypatch.setenv("ROLLCALL_DATABASE_URL", database_url)
    monkeypatch.setenv("ROLLCALL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ROLLCALL_SECRET_KEY", box_key())
    monkeypatch.setenv("ROLLCALL_ISSUER", ISSUER)
    monkeypatch.setattr("sys.stdin", io.StringIO(upstream.client_secret + "\n"))
    argv = ["connection", "set-upstream", "Clever", "--issuer", upstream.url]
    argv += ["--client-id", upstream.client_id, "--client-secret-stdin", "--json"]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["redirect_uri"] == CALLBACK and printed["link_claim"] == "sub"
    assert upstream.client_secret not in json.dumps(printed)
    assert signed_in_subject(http, district, upstream) == broker.twin_id


def test_set_upstream_refuses_what_it_cannot_use(
    district, upstream, database, box, monkeypatch, tmp_path, database_url, capsys, dead_url
):
    monkeypatch.setenv("ROLLCALL_DATABASE_URL", database_url)
    monkeypatch.setenv("ROLLCALL_DATA_DIR", str(tmp_path))
    dead = dead_url
    monkeypatch.setattr("sys.stdin", io.StringIO("secret\n"))
    argv = ["connection", "set-upstream", "Clever", "--issuer", dead, "--client-id", "x"]
    assert main([*argv, "--client-secret-stdin"]) == 1
    assert "cannot be discovered" in capsys.readouterr().err
    assert main(argv) == 2
    assert main(["connection", "add", "Office CSV", "--kind", "csv"]) == 0
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", io.StringIO("secret\n"))
    argv = ["connection", "set-upstream", "Office CSV", "--issuer", upstream.url]
    assert main([*argv, "--client-id", "x", "--client-secret-stdin"]) == 1
    assert "Only an SSO connection" in capsys.readouterr().err


def test_typed_sso_username_is_routed_after_the_password_step(http, district, upstream, broker):
    start = http.get(authorize_url(district.client_id))
    routed = sign_in(http, start.headers["location"], "mvanhouten", "")
    assert routed.status_code == 303
    leave = http.get(routed.headers["location"])
    assert leave.status_code == 303
    authorize = leave.headers["location"]
    assert authorize.startswith(upstream.url + "/oauth/authorize?")
    assert query_of(authorize)["login_hint"] == "mvanhouten"


def test_login_hint_fills_in_the_name_and_the_page_stays_the_same_for_everyone(
    http, district, upstream, broker
):
    pages = {}
    for name in ("mvanhouten", "nobody"):
        start = http.get(authorize_url(district.client_id, login_hint=name, state="s", nonce="n"))
        page = http.get(start.headers["location"])
        assert page.status_code == 200
        assert f'value="{name}"' in page.text and 'name="password"' in page.text
        pages[name] = page.text.replace(name, "NAME")
    assert pages["mvanhouten"] == pages["nobody"]
    leave = http.get(button_of(pages["mvanhouten"].replace("NAME", "mvanhouten"), "Clever"))
    assert query_of(leave.headers["location"])["login_hint"] == "mvanhouten"


def test_unlinked_upstream_account_sees_a_clear_page(http, district, upstream, database, box):
    provision_twin(database, box, district, upstream, twin={"external_id": "someone-else"})
    authorize, _ = to_upstream(http, district)
    page = come_back(http, sign_in_upstream(upstream, authorize))
    assert page.status_code == 403
    assert (
        "Your Clever account is not linked to a Rollcall account yet — ask your school" in page.text
    )
    assert "rollcall_session" not in page.headers.get("set-cookie", "")
    assert 'href="/login?next=' in page.text


def test_deactivated_twin_cannot_sign_in_upstream(http, district, upstream, broker, database):
    with database.session() as session:
        actor = system_actor(district.tenant_id, "test")
        twin = users.get_user(session, actor, broker.twin_id)
        users.deactivate_user(session, actor, twin, override=True)
    authorize, _ = to_upstream(http, district)
    page = come_back(http, sign_in_upstream(upstream, authorize))
    assert page.status_code == 403
    assert "not linked to a Rollcall account yet" in page.text
    with database.session() as session:
        assert session.scalars(select(BrowserSession)).first() is None


def test_tampered_state_ends_on_a_retry_page(http, district, upstream, broker, database):
    authorize, _ = to_upstream(http, district)
    callback = sign_in_upstream(upstream, authorize)
    state = query_of(callback)["state"]
    page = come_back(http, callback.replace(state, state[:-3] + "xyz"))
    assert page.status_code == 400
    assert "Please start again" in page.text and 'href="/login?next=' in page.text
    with database.session() as session:
        assert session.scalars(select(BrowserSession)).first() is None


def test_error_in_the_callback_ends_on_a_retry_page(http, district, upstream, broker):
    authorize, _ = to_upstream(http, district)
    state = query_of(authorize)["state"]
    page = come_back(http, f"{CALLBACK}?error=access_denied&state={state}")
    assert page.status_code == 400
    assert "Sign-in was cancelled" in page.text
    assert 'href="/login?next=%2Foauth%2Fauthorize' in page.text  # back to the same app


def test_id_token_signed_by_another_key_is_refused(http, district, upstream, broker, database):
    authorize, _ = to_upstream(http, district)
    callback = sign_in_upstream(upstream, authorize)
    upstream.keys.on = True
    page = come_back(http, callback)
    assert page.status_code == 502
    assert "failed verification" in page.text
    assert "rollcall_session" not in page.headers.get("set-cookie", "")
    with database.session() as session:
        assert session.scalars(select(BrowserSession)).first() is None


def test_upstream_that_is_down_ends_on_a_retry_page(
    http, district, database, box, tmp_path, dead_url
):
    dead = Upstream(dead_url, None, "", "client", "secret", "sub", None)  # type: ignore[arg-type]
    provision_twin(database, box, district, dead)
    start = http.get(authorize_url(district.client_id))
    login = http.get(start.headers["location"])
    page = http.get(button_of(login.text, "Clever"))
    assert page.status_code == 502
    assert "Clever cannot be reached" in page.text and 'href="/login?next=' in page.text


def test_made_up_links_end_on_clear_pages(http, district, upstream, broker, database):
    unknown = http.get("/login/upstream/not-a-connection?next=/oauth/authorize")
    assert unknown.status_code == 404 and "No such sign-in provider" in unknown.text
    bare = http.get("/login/upstream/callback")
    assert bare.status_code == 400 and "Please start again" in bare.text
    forged = http.get(f"/login/upstream/callback?code=x&state={broker.connection_id}.forged")
    assert forged.status_code == 400 and "Please start again" in forged.text
    with database.session() as session:
        assert session.scalars(select(BrowserSession)).first() is None


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/jwks"])
def test_upstream_failing_during_the_callback_ends_on_a_retry_page(
    http, district, upstream, broker, database, path
):
    authorize, _ = to_upstream(http, district)
    callback = sign_in_upstream(upstream, authorize)
    upstream.keys.down.add(path)
    page = come_back(http, callback)
    assert page.status_code == 502, page.text
    assert "Clever" in page.text and 'href="/login?next=%2Foauth%2Fauthorize' in page.text
    with database.session() as session:
        assert session.scalars(select(BrowserSession)).first() is None


def test_an_upstream_answering_json_nested_too_deep_is_unavailable_not_a_crash():
    # Found by hand (issue 11 re-check): json raised RecursionError, not ValueError, so a
    # district provider answering [[[[…]]]] made the student's sign-in a 500.
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    from oidc.upstream import UpstreamUnavailable, discover
    from tests.live import serving

    async def discovery(request):
        return Response("[" * 100_000 + "]" * 100_000, media_type="application/json")

    app = Starlette(routes=[Route("/.well-known/openid-configuration", discovery)])
    with serving(app) as base, pytest.raises(UpstreamUnavailable, match="JSON"):
        discover(base)
