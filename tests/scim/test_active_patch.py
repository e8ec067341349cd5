"""Issue 15: PATCH ``active`` alone, the (de)activation Entra ID and Okta send, is served
without the engine's read, validation and deep copy of the whole user (``scim/handler.py``),
with the same rules and the same answer as the engine's path."""

from __future__ import annotations

import sys
import threading

from sqlalchemy import select
from starlette.testclient import TestClient

from server.app import create_app
from server.db import AuditEvent
from server.db.session import Database
from tests.scim.helpers import PATCH, IdP

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
