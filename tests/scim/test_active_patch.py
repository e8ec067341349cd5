"""Issue 15: PATCH ``active`` alone, the (de)activation Entra ID and Okta send, is served
without the engine's read, validation and deep copy of the whole user (``scim/handler.py``),
with the same rules and the same answer as the engine's path."""

from __future__ import annotations

import sys
import threading

from sqlalchemy import select
from starlette.testclient import TestClient

from server.app import create_app
from server.db import AuditEvent, OAuthToken, ScimValue, User
from server.db.session import Database
from server.domain import oauth
from server.domain.actors import system_actor
from tests.scim.conftest import add_connection
from tests.scim.helpers import PATCH, IdP, statements

ACTIVE = "active"


def _set_active(idp: IdP, user_id: str, active: bool, **headers: str):
    body = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": ACTIVE, "value": active}]}
    return idp.request("PATCH", f"/Users/{user_id}", json=body, headers=headers)


def _without_version(doc: dict) -> dict:
    meta = {k: v for k, v in doc["meta"].items() if k not in ("version", "lastModified")}
    return {**doc, "meta": meta}


def test_the_lean_answer_audit_and_index_are_the_engines(idp: IdP, database: Database) -> None:
    pupil = idp.create_user("lean.pupil", name={"givenName": "Lean", "familyName": "Pupil"})
    lean = _set_active(idp, pupil["id"], False)
    assert lean.status_code == 200 and lean.json()["active"] is False, lean.text
    found = idp.get("/Users", params={"filter": 'active eq false and userName eq "lean.pupil"'})
    assert found.json()["totalResults"] == 1
    # If-Match sends the same change through the engine (a condition is the engine's to check)
    version = lean.json()["meta"]["version"]
    back = _set_active(idp, pupil["id"], True, **{"If-Match": version})
    assert back.status_code == 200 and back.json()["active"] is True, back.text
    version = back.json()["meta"]["version"]
    engine = _set_active(idp, pupil["id"], False, **{"If-Match": version})
    assert _without_version(lean.json()) == _without_version(engine.json())
    assert lean.headers["etag"] != engine.headers["etag"]
    # Okta's form, without a path; a PATCH that changes nothing writes nothing
    okta = {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {ACTIVE: True}}]}
    assert idp.request("PATCH", f"/Users/{pupil['id']}", json=okta).json()[ACTIVE] is True
    again = idp.request("PATCH", f"/Users/{pupil['id']}", json=okta)
    assert (
        again.json()["meta"]["version"]
        == idp.get(f"/Users/{pupil['id']}").json()["meta"]["version"]
    )
    with database.session(read_only=True) as session:
        actions = session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.target_id == pupil["id"])
            .order_by(AuditEvent.id)
        ).all()
    assert actions == [
        "user.create",
        "user.deactivate",
        "user.reactivate",
        "user.deactivate",
        "user.reactivate",
    ]


def test_a_lean_patch_still_refuses_what_the_engine_refuses(idp: IdP, district) -> None:
    assert _set_active(idp, "no-such-user", False).status_code == 404
    pupil = idp.create_user("strict.pupil")
    stale = _set_active(idp, pupil["id"], False, **{"If-Match": 'W/"99"'})
    assert stale.status_code == 412


def _calls_per_patch(settings, database: Database, district, operation: dict) -> int:
    """Python calls (every thread of the app) of the third of three such PATCHes."""
    calls, counting = 0, False

    def count(frame, event, arg) -> None:
        nonlocal calls
        calls += counting and event in ("call", "c_call")

    threading.setprofile(count)
    try:
        with TestClient(create_app(settings, database=database)) as client:
            idp = IdP(client, district.token)
            for n in range(3):
                user = idp.create_user(f"counted.{n}.{operation['path']}")
                body = {"schemas": [PATCH], "Operations": [operation]}
                calls, counting = 0, True
                sys.setprofile(count)
                answer = idp.request("PATCH", f"/Users/{user['id']}", json=body)
                sys.setprofile(None)
                counting = False
                assert answer.status_code == 200, answer.text
    finally:
        threading.setprofile(None)
    return calls


def test_a_deactivation_costs_less_work_than_an_engine_patch(settings, database, district) -> None:
    """Counted, never timed: before issue 15's lean path a deactivation (which also revokes
    tokens and audits) made more calls than a PATCH of a name through the engine."""
    name = {"op": "replace", "path": "displayName", "value": "Renamed"}
    deactivation = {"op": "replace", "path": ACTIVE, "value": False}
    engine = _calls_per_patch(settings, database, district, name)
    lean = _calls_per_patch(settings, database, district, deactivation)
    assert lean < engine * 0.95, (lean, engine)  # before: 1.07x; now ~0.88x


def _stored_state(database: Database, user_id: str) -> dict:
    """What a (de)activation changed of a user: its row, its OIDC tokens, its audit event."""
    with database.session(read_only=True) as session:
        user = session.get(User, user_id)
        assert user is not None
        event = session.scalars(
            select(AuditEvent)
            .where(AuditEvent.target_id == user_id)
            .order_by(AuditEvent.id.desc())
            .limit(1)
        ).one()
        revoked = session.scalars(
            select(OAuthToken.revoked_at.is_not(None)).where(OAuthToken.user_id == user_id)
        ).all()
        return {
            "status": user.status,
            "deleted_at": user.deleted_at,
            "purge_after": user.purge_after,
            "version": user.version,
            "tokens revoked": revoked,
            "event": (event.action, event.changes, event.override, event.detail, event.actor_id),
        }


def _with_oidc_token(database: Database, district, user_id: str) -> None:
    with database.session() as session:
        client = oauth.create_client(
            session,
            system_actor(district.tenant_id, "test"),
            f"portal-{user_id}",
            redirect_uris=["https://portal.example/cb"],
        ).client
        oauth.store_token(session, client, f"access-{user_id}", "openid", user_id=user_id)


def test_a_lean_deactivation_changes_what_the_engines_changes(
    idp: IdP, database: Database, district
) -> None:
    """The rule of a status change is the domain's, one for both paths: a leaving student is
    kept until the end of the school year (``purge_after``), loses their sign-in tokens, and
    the change is audited with the status before and after."""
    lean, engine = idp.create_user("lean.leaver"), idp.create_user("engine.leaver")
    for user in (lean, engine):
        _with_oidc_token(database, district, user["id"])
    assert _set_active(idp, lean["id"], False).status_code == 200
    version = engine["meta"]["version"]
    assert _set_active(idp, engine["id"], False, **{"If-Match": version}).status_code == 200
    left = _stored_state(database, lean["id"])
    assert left == _stored_state(database, engine["id"])
    assert left["status"] == "inactive" and left["purge_after"] is not None
    assert left["tokens revoked"] == [True] and left["version"] == 2
    assert left["event"][:2] == ("user.deactivate", {"status": ["active", "inactive"]})
    # and back: the keep-until date goes, the tokens stay revoked
    assert _set_active(idp, lean["id"], True).status_code == 200
    version = idp.get(f"/Users/{engine['id']}").json()["meta"]["version"]
    assert _set_active(idp, engine["id"], True, **{"If-Match": version}).status_code == 200
    back = _stored_state(database, lean["id"])
    assert back == _stored_state(database, engine["id"])
    assert (back["status"], back["purge_after"], back["version"]) == ("active", None, 3)


def test_an_sso_linked_user_can_still_be_deactivated(app, database: Database, district) -> None:
    # the SSO guard locks usernames and passwords, not a user's status
    sso = IdP(app, add_connection(database, district, "Clever", sso="Clever"))
    pupil = sso.create_user("sso.pupil")
    off = _set_active(sso, pupil["id"], False)
    assert off.status_code == 200 and off.json()["active"] is False, off.text
    assert _stored_state(database, pupil["id"])["status"] == "inactive"
    on = _set_active(sso, pupil["id"], True)
    assert on.status_code == 200 and on.json()["active"] is True, on.text


def test_a_stale_if_match_on_active_changes_nothing(idp: IdP, database: Database) -> None:
    pupil = idp.create_user("stale.pupil")
    assert _set_active(idp, pupil["id"], False).status_code == 200  # version 2 now
    stale = _set_active(idp, pupil["id"], True, **{"If-Match": pupil["meta"]["version"]})
    assert stale.status_code == 412, stale.text
    assert _stored_state(database, pupil["id"])["status"] == "inactive"


def test_another_connections_user_is_not_found(app, database: Database, idp: IdP, district) -> None:
    pupil = idp.create_user("owned.pupil")
    other = IdP(app, add_connection(database, district, "Okta"))
    assert _set_active(other, pupil["id"], False).status_code == 404
    assert _stored_state(database, pupil["id"])["status"] == "active"


def _revoked_at(database: Database, user_id: str) -> list:
    with database.session(read_only=True) as session:
        return list(
            session.scalars(select(OAuthToken.revoked_at).where(OAuthToken.user_id == user_id))
        )


def test_a_deactivation_revokes_tokens_only_where_there_are_live_ones(
    idp: IdP, database: Database, district
) -> None:
    """Issue 15: the revocation is sent only for a user the read found holding live tokens;
    such a user still loses them all, and a revocation already made keeps its time."""
    holder, other = idp.create_user("token.holder"), idp.create_user("token.other")
    for user in (holder, other):
        _with_oidc_token(database, district, user["id"])
    with statements(database) as seen:
        assert _set_active(idp, holder["id"], False).status_code == 200
    assert len([s for s in seen if s.startswith("UPDATE oauth_tokens")]) == 1, seen
    [revoked] = _revoked_at(database, holder["id"])
    assert revoked is not None and _revoked_at(database, other["id"]) == [None]
    assert _set_active(idp, holder["id"], True).status_code == 200
    with statements(database) as seen:
        assert _set_active(idp, holder["id"], False).status_code == 200
    assert not any(s.startswith("UPDATE oauth_tokens") for s in seen), seen
    assert _revoked_at(database, holder["id"]) == [revoked]


def test_a_deactivation_is_routed_once(settings, database: Database, district) -> None:
    """Issue 15: scim2-server worked out a PATCH's route four times (for the size of its body,
    its authentication, the handler and the operation), walking its route table each time."""
    from scim2_server import routing

    walks, counting = 0, False

    def count(frame, event, arg) -> None:
        nonlocal walks
        walks += counting and event == "call" and frame.f_code is routing.match.__code__

    threading.setprofile(count)  # the SCIM handler runs in a worker thread
    try:
        with TestClient(create_app(settings, database=database)) as client:
            idp = IdP(client, district.token)
            pupil = idp.create_user("routed.pupil")
            counting = True
            sys.setprofile(count)
            answer = _set_active(idp, pupil["id"], False)
            sys.setprofile(None)
            counting = False
    finally:
        threading.setprofile(None)
    assert answer.status_code == 200, answer.text
    # once, or not at all when this process has routed a PATCH of a user before (routes are
    # kept by shape: tests/scim/test_request_overhead.py)
    assert walks <= 1, walks


def _string_active(idp: IdP, user_id: str, value: object, **headers: str):
    """Entra ID's (de)activation: ``Replace`` and the boolean as a string."""
    body = {"schemas": [PATCH], "Operations": [{"op": "Replace", "path": ACTIVE, "value": value}]}
    return idp.request("PATCH", f"/Users/{user_id}", json=body, headers=headers)


def test_entras_string_booleans_take_the_lean_path_with_the_engines_answer(
    profiled: IdP, database: Database
) -> None:
    # Issue 15: Entra ID sends {"op": "Replace", "path": "active", "value": "False"}; the engine
    # reads a string as pydantic reads a boolean, and the lean path took JSON booleans only, so
    # Entra's real deactivations went through the engine (12 statements instead of 5).
    # Source of the shape: Microsoft Learn, "Known issues and resolutions with SCIM 2.0
    # protocol compliance of the Microsoft Entra user provisioning service" (booleans sent as
    # strings without the aadOptscim062020 flag; ../shared/REFERENCES.md).
    idp = profiled
    for number, (off, on) in enumerate([("False", "True"), ("false", "true"), ("0", "yes")]):
        pupil = idp.create_user(f"string.pupil{number}")
        with statements(database) as seen:
            lean = _string_active(idp, pupil["id"], off)
        assert lean.status_code == 200 and lean.json()[ACTIVE] is False, lean.text
        assert not [s for s in seen if "scim_values" in s], seen  # the index has no `active`
        assert len(seen) <= 5, seen  # BEGIN, the user, its status, its audit event
        back = _string_active(idp, pupil["id"], on)
        assert back.status_code == 200 and back.json()[ACTIVE] is True, back.text
        version = back.json()["meta"]["version"]
        engine = _string_active(idp, pupil["id"], off, **{"If-Match": version})
        assert engine.status_code == 200, engine.text
        assert _without_version(lean.json()) == _without_version(engine.json())
    # what the engine refuses is still its own answer
    pupil = idp.create_user("string.pupil.refused")
    for value in ("maybe", "", None, 1.5, [False]):
        with statements(database) as seen:
            refused = _string_active(idp, pupil["id"], value)
        engine = _string_active(idp, pupil["id"], value, **{"If-Match": pupil["meta"]["version"]})
        assert (refused.status_code, refused.json()) == (engine.status_code, engine.json())
    assert idp.get(f"/Users/{pupil['id']}").json()[ACTIVE] is True


def test_a_deactivation_writes_no_index_row_and_active_is_read_from_the_status(
    idp: IdP, database: Database
) -> None:
    # Issue 15: every filter on `active` compared the user's status column, yet each create
    # wrote an `active` index row and each PATCH of `active` rewrote it (one UPDATE and its
    # index pages); only a sort by `active` read it. The sort now reads the status too.
    ids = [idp.create_user(f"sorted.pupil{n}")["id"] for n in range(4)]
    with statements(database) as seen:
        assert _set_active(idp, ids[1], False).status_code == 200
        assert _string_active(idp, ids[2], "False").status_code == 200
    assert not [s for s in seen if "scim_values" in s], seen
    with database.session(read_only=True) as session:
        paths = session.scalars(select(ScimValue.path).where(ScimValue.resource_id.in_(ids)))
        assert not [p for p in paths if p.endswith(":active")]
    for order, expected in [("ascending", [False, False, True, True]), ("descending", None)]:
        found = idp.get("/Users", params={"sortBy": "active", "sortOrder": order}).json()
        actives = [u[ACTIVE] for u in found["Resources"] if u["id"] in ids]
        assert actives == (expected or [True, True, False, False]), found
    inactive = idp.get("/Users", params={"filter": "active eq false"}).json()["Resources"]
    assert sorted(u["id"] for u in inactive) == sorted([ids[1], ids[2]])
    present = idp.get("/Users", params={"filter": "active pr"}).json()["totalResults"]
    assert present == 4
