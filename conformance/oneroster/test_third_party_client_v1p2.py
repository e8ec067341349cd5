"""A district app reads Rollcall's OneRoster 1.2 Rostering with a client someone else wrote.

``timeback-oneroster`` (PyPI, MIT) is a typed 1.2 client: OAuth 2 client credentials with
HTTP Basic, paging by ``Link``/``X-Total-Count``, and pydantic models whose enumerations
(user ``roles[].role``, enrollment ``role``, ``status``, org ``type``, session ``type``,
``classType``, ``sex``) and required fields refuse an answer outside them. It needs Python 3.12
or newer, so it lives in ``.venv-clients/`` (``make .venv-clients/.installed``, pinned in
``clients.txt``) and ``walk_v1p2.py`` runs there as a subprocess against the live server.

Accepted deviations of the client, each against the official 1.2 OpenAPI document
(1EdTech/oneroster-bootcamp ``src/main/resources/oas/onerosterv1p2rostersservice_openapi3_v1p0
.json``), so the walk leaves them out:

- ``/terms`` and ``/gradingPeriods``: the client unwraps ``{"terms": […]}`` and
  ``{"gradingPeriods": […]}``; the document answers both with ``AcademicSessionSetDType``
  (``{"academicSessions": […]}``) and single reads with ``SingleAcademicSessionDType``, as we do.
  Terms and grading periods are read through ``/academicSessions`` instead.
- grades: the client turns grades into numbers and refuses CEDS ``KG``, ``PK``, ``IT``…, which
  the 1.2 ``grades`` vocabulary lists; the seeded district uses numbered grades only.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conformance.oneroster.conftest import PREFIXES, LiveServer

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ROOT / ".venv-clients"
WALK = Path(__file__).with_name("walk_v1p2.py")
# client attribute → our endpoint and envelope
ENDPOINTS = {
    "orgs": ("orgs", "orgs"),
    "schools": ("schools", "orgs"),
    "academic_sessions": ("academicSessions", "academicSessions"),
    "courses": ("courses", "courses"),
    "classes": ("classes", "classes"),
    "users": ("users", "users"),
    "students": ("students", "users"),
    "teachers": ("teachers", "users"),
    "enrollments": ("enrollments", "enrollments"),
    "demographics": ("demographics", "demographics"),
}


@pytest.fixture(scope="module")
def client_python() -> Path:
    """The Python of ``.venv-clients/``, built by the Makefile's own target."""
    subprocess.run(["make", "-s", ".venv-clients/.installed"], cwd=ROOT, check=True)
    unavailable = CLIENTS / ".unavailable"
    if unavailable.exists():
        pytest.skip(f"third-party 1.2 client not installed: {unavailable.read_text().strip()}")
    return CLIENTS / "bin" / "python"


@pytest.fixture(scope="module")
def walk(client_python: Path, live: LiveServer) -> dict:
    done = subprocess.run(
        [str(client_python), str(WALK), live.url, live.client_id, live.client_secret, "7"],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout)


def _served(live: LiveServer, endpoint: str, envelope: str) -> list[str]:
    with live.client() as http:
        answer = http.get(f"{PREFIXES['v1p2']}/{endpoint}", params={"limit": 1000})
    assert answer.status_code == 200, answer.text
    return [item["sourcedId"] for item in answer.json()[envelope]]


def test_the_client_parses_every_page_and_record(walk):
    assert walk["errors"] == []


@pytest.mark.parametrize("name", sorted(ENDPOINTS))
def test_the_client_pages_through_everything_served(walk, live, name):
    seen = walk["collections"][name]
    assert len(seen) == len(set(seen)), f"{name}: a record came twice while paging"
    assert sorted(seen) == sorted(_served(live, *ENDPOINTS[name]))
    assert walk["singles"][name] == seen[0]


def test_the_client_sees_the_seeded_district(walk):
    collections = walk["collections"]
    assert {"school-cedar", "school-maple"} <= set(collections["schools"])
    assert {"sy-2027", "term-fall-2026", "gp-fall-q1"} <= set(collections["academic_sessions"])
    # paged at 7 a page: the 59 students and 64 enrollments take several pages each
    assert len(collections["students"]) > 7 * 3 and len(collections["enrollments"]) > 7 * 3
    assert "student-school-maple-2" not in collections["users"]  # deleted: never served
    assert "incomplete-1" not in collections["users"]  # no role, no school: never served
    assert "student-school-maple-3" in collections["demographics"]
    # the aide stored from a 1.1 source: an enrollment the client can read (role teacher)
    assert "enrollment-aide-1" in collections["enrollments"]


def test_the_client_reads_the_nested_class_lists(walk):
    nested = walk["nested"]
    assert nested["classes/class-school-cedar-1/students"]
    assert nested["classes/class-school-cedar-1/teachers"]
    assert nested["schools/school-cedar/students"]
    assert all(nested[f"users/{s}/classes"] for s in walk["collections"]["students"][:2])
