"""Property tests (Hypothesis) of the file readers: whatever bytes arrive, the answer is a report.

A school CSV sent to ``POST /admin/api/imports`` and a OneRoster package pushed to
``POST /oneroster/csv`` (both as trial runs) with made-up content — headers drawn from the real
ones and from junk, cells with quotes, separators and line breaks, text in other encodings,
bytes that are not text at all — get a valid report (200), a report refusing rows or the file
with their codes (422, ``Rnnn`` per row or ``Fnnn`` for the file), or a specific 400, never a
500. ``make soak`` runs many more examples with a fresh seed.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oneroster.csv_files import HEADERS
from server.domain import roster
from server.domain.actors import system_actor
from server.imports.school_csv import COLUMNS
from tests.generated import fuzz_settings
from tests.imports.conftest import bearer
from tests.imports.packages import MANIFEST_FILES, csv_text

CODE = re.compile(r"[FR]\d{3}")
CELLS = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", '"', "'", ",", ";", "\n", "\r\n", "=1+1", "\ufeff", "2026-02-30"]),
)


def _table(columns: list[str], rows: list[list[str]], delimiter: str) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue()


def tables(known: tuple[str, ...]) -> Any:
    """CSV text under the real header (mostly, so rows get read), the real columns shuffled,
    or a header mixing real columns with junk."""
    header = st.one_of(
        st.just(list(known)),
        st.just(list(known)),
        st.permutations(known),
        st.lists(st.one_of(st.sampled_from(known), st.text(max_size=8)), max_size=12),
    )
    rows = st.lists(st.lists(CELLS, min_size=len(known) - 2, max_size=len(known) + 1), max_size=5)
    return st.builds(_table, header, rows, st.sampled_from([",", ";"]))


def files(known: tuple[str, ...]) -> Any:
    """The bytes of a file: a table in UTF-8 or another encoding, cut anywhere, or noise."""
    encoded = st.builds(
        lambda text, encoding: text.encode(encoding, errors="replace"),
        tables(known),
        st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1"]),
    )
    cut = st.builds(lambda data, at: data[:at], encoded, st.integers(0, 200))
    return st.one_of(encoded, cut, st.binary(max_size=200))


def _answered_with_codes(response: Any) -> None:
    """200 with a report, 422 with the codes of what was refused, or 400 naming the problem."""
    assert response.status_code in (200, 400, 422), (response.status_code, response.text[:300])
    body = response.json()
    if response.status_code == 400:
        assert body["error"], body
    elif response.status_code == 422:
        codes = [e["code"] for e in body["file_errors"]] + list(body["codes"])
        assert codes and all(CODE.fullmatch(code) for code in codes), body
    else:
        assert body["status"] == "valid", body


@pytest.fixture
def school(tenancy) -> None:
    with tenancy.database.session() as session:
        system = system_actor(tenancy.tenant_id)
        roster.create_org(session, system, {"name": "Lincoln", "sourced_id": "lin"})


def test_any_school_csv_gets_a_report_or_a_code(client, admin_token, school):
    @given(data=files(tuple(COLUMNS)), name=st.sampled_from(["pupils.csv", "pupils.txt"]))
    @fuzz_settings(60)
    def upload(data, name):
        response = client.post(
            "/admin/api/imports",
            data={"dry_run": "true", "connection": "School upload"},
            files={"file": (name, data, "text/csv")},
            headers=bearer(admin_token),
        )
        _answered_with_codes(response)

    upload()


def _package(version: str, name: str, content: bytes) -> bytes:
    """A zip with a correct manifest listing ``name`` (bulk) and ``content`` as that file."""
    names = set(MANIFEST_FILES) | ({"roles", "userProfiles"} if version == "1.2" else set())
    manifest = {"manifest.version": "1.0", "oneroster.version": version}
    manifest |= {f"file.{n}": "bulk" if f"{n}.csv" == name else "absent" for n in sorted(names)}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        rows = [{"propertyName": k, "value": v} for k, v in manifest.items()]
        archive.writestr("manifest.csv", csv_text(["propertyName", "value"], rows))
        archive.writestr(name, content)
    return out.getvalue()


@st.composite
def packages(draw: Any) -> bytes:
    version = draw(st.sampled_from(["1.1", "1.2"]))
    name = draw(st.sampled_from(["users.csv", "orgs.csv", "enrollments.csv", "classes.csv"]))
    content = draw(files(tuple(HEADERS[version][name])))
    return _package(version, name, content)


def test_any_oneroster_package_gets_a_report_or_a_code(client, tenancy):
    token = tenancy.tokens["SIS"]

    @given(body=st.one_of(packages(), st.binary(max_size=200)))
    @fuzz_settings(60)
    def push(body):
        response = client.post("/oneroster/csv?dry_run=true", content=body, headers=bearer(token))
        _answered_with_codes(response)

    push()
