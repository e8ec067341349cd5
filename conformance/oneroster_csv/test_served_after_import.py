"""What a CSV package brought in is served over OneRoster REST in the official shapes.

Every column of every file is filled (``full_district``), imported, then every collection of
both versions is read as a district app would and each object checked against
``conformance/oneroster/schemas`` (written after the 1EdTech OneRoster 1.2 Rostering OpenAPI:
e.g. ``UserProfileDType`` needs ``profileId``, ``profileType``, ``vendorId``; ``RoleDType``
carries ``userProfile``; ``roles`` has ``minItems: 1``).
"""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from conformance.oneroster.conftest import PREFIXES, SCOPES, _load_schemas
from server.app import create_app
from server.domain import oauth
from server.domain.actors import system_actor
from tests.conftest import settings  # noqa: F401
from tests.imports.packages import full_district, package

COLLECTIONS = {
    "orgs": "org",
    "academicSessions": "academicSession",
    "courses": "course",
    "classes": "class",
    "users": "user",
    "enrollments": "enrollment",
    "demographics": "demographics",
}


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_every_imported_object_is_served_valid(tenancy, tmp_path, settings, version):  # noqa: F811
    report = tenancy.run(package(tmp_path / "p.zip", version, full_district(version)))
    assert report.status == "applied", report.as_dict()
    with tenancy.database.session() as session:
        made = oauth.create_client(
            session, system_actor(tenancy.tenant_id), "district app", kind="api", scopes=SCOPES
        )
        oauth.store_token(session, made.client, "district-app-token", " ".join(SCOPES))
    schemas = _load_schemas()
    served = version.replace(".", "p").replace("1p", "v1p")
    checked = 0
    with TestClient(create_app(settings, database=tenancy.database)) as client:
        client.headers["Authorization"] = "Bearer district-app-token"
        for name, kind in COLLECTIONS.items():
            answer = client.get(f"{PREFIXES[served]}/{name}?limit=1000")
            assert answer.status_code == 200, answer.text
            items = answer.json()[name]
            assert items, name
            for item in items:
                errors = [e.message for e in schemas[f"{served}/{kind}"].iter_errors(item)]
                assert errors == [], (name, item["sourcedId"], errors)
                checked += 1
    assert checked >= 20
