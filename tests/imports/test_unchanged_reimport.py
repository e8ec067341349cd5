"""The unchanged re-import is cheap (issue 15) but reports and decides exactly what a full
read would: one report row per file row, the same repairs, the same reading of the header.

Speed is measured in ``bench/imports.py``; these tests pin what a shortcut must not lose."""

from __future__ import annotations

from oneroster.csv_files import HEADERS
from tests.imports.conftest import bearer
from tests.imports.packages import district, package

USERS_1_1 = list(HEADERS["1.1"]["users.csv"])


def test_repairs_are_still_reported_on_rows_a_reimport_finds_unchanged(tenancy, tmp_path):
    """Lenient reading's W203 is the row's own (LongsightGroup/oneroster's validator refuses
    ``TRUE``; we repair it and say so), so it comes back on every import of that row."""
    files = district("1.1", students=2)
    files["users.csv"][1]["enabledUser"] = "TRUE"
    files["classes.csv"][0]["termSourcedIds"] = "t1,,"
    path = package(tmp_path / "district.zip", "1.1", files)
    assert tenancy.run(path).status == "applied"

    again = tenancy.run(path)

    rows = {(r["file"], r["key"]): r for r in again.rows()}
    assert (rows["users.csv", "u1"]["outcome"], rows["users.csv", "u1"]["code"]) == (
        "unchanged",
        "W203",
    )
    assert "enabledUser 'TRUE' → 'true'" in rows["users.csv", "u1"]["message"]
    assert rows["classes.csv", "k1"]["code"] == "W203"
    assert "termSourcedIds 't1,,' → 't1'" in rows["classes.csv", "k1"]["message"]
    assert again.outcomes["unchanged"] == again.row_count


def test_a_reimport_reports_one_row_per_file_row_and_stores_them_all(
    tenancy, tmp_path, client, admin_token
):
    files = district("1.1", students=3)
    path = package(tmp_path / "district.zip", "1.1", files)
    first = tenancy.run(path)
    assert first.status == "applied", first.summary
    files["enrollments.csv"][2]["beginDate"] = "2026-08-15"
    changed = package(tmp_path / "changed.zip", "1.1", files)

    again = tenancy.run(changed)

    rows = list(again.rows())
    assert len(rows) == sum(len(listed) for listed in files.values()) == again.row_count
    assert [(r["file"], r["row"]) for r in rows if r["outcome"] != "unchanged"] == [
        ("enrollments.csv", 4)
    ]
    (moved,) = [r for r in rows if r["outcome"] == "updated"]
    assert moved["changes"] == {"begin_date": ["2026-08-01", "2026-08-15"]}
    answer = client.get(f"/admin/api/imports/{again.id}", headers=bearer(admin_token))
    assert answer.status_code == 200, answer.text
    assert answer.json()["row_results"] == rows


def test_the_same_cells_under_a_reordered_header_are_unchanged(tenancy, tmp_path):
    files = district("1.1", students=2)
    assert tenancy.run(package(tmp_path / "district.zip", "1.1", files)).status == "applied"
    reordered = {"users.csv": USERS_1_1[::-1]}

    again = tenancy.run(package(tmp_path / "reordered.zip", "1.1", files, headers=reordered))

    assert again.outcomes["unchanged"] == again.row_count, again.summary
    assert {"file": "users.csv", "message": "columns are not in the spec's order"} in (
        again.warnings
    )


def test_a_header_that_swaps_two_columns_is_not_taken_for_unchanged(tenancy, tmp_path):
    """Same cells, same order, but the header names givenName and familyName the other way
    round: the rows now say something else and must be applied."""
    files = district("1.1", students=2)
    path = package(tmp_path / "district.zip", "1.1", files)
    assert tenancy.run(path).status == "applied"
    assert tenancy.user("u1").given_name == "Stua"
    swapped = [
        {**user, "givenName": user["familyName"], "familyName": user["givenName"]}
        for user in files["users.csv"]
    ]
    header = [{"givenName": "familyName", "familyName": "givenName"}.get(c, c) for c in USERS_1_1]
    again = tenancy.run(
        package(
            tmp_path / "swapped.zip",
            "1.1",
            files | {"users.csv": swapped},
            headers={"users.csv": header},
        )
    )

    changed = {r["key"]: r for r in again.rows() if r["file"] == "users.csv"}
    assert changed["u1"]["outcome"] == "updated", changed["u1"]
    assert changed["u1"]["changes"]["given_name"] == ["Stua", "Denta"]
    assert tenancy.user("u1").given_name == "Denta"
