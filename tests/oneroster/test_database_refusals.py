"""Issue 11 defect 7 (the OneRoster half that issue 13 defect 5 touches): only a busy or
unreachable database is "retry later"; a query the database refuses to run is the client's."""

from __future__ import annotations

from tests.oneroster.conftest import bearer


def test_a_filter_too_large_for_the_database_is_never_told_to_retry(api, reader, database_url):
    terms = " OR ".join(f"givenName='n{i}'" for i in range(1200))
    answer = api.get(
        "/ims/oneroster/rostering/v1p2/users", params={"filter": terms}, headers=bearer(reader())
    )
    assert answer.status_code not in (429, 503) and "retry-after" not in answer.headers
    if database_url.startswith("sqlite"):  # SQLite: "Expression tree is too large"
        assert answer.status_code == 400
        assert answer.json()["imsx_codeMajor"] == "failure"
