"""Reading rows fast (issue 15) gives the verdicts a cell-by-cell reading gave.

The reader checks a row's sourcedId cells with one match when each holds one GUID, and maps
cells to columns once per header; these tests pin the cases those shortcuts could get wrong.
GUID rule: 1-255 characters from ``0-9 A-Z a-z . - _ / @`` (LongsightGroup/oneroster's
parseOneRosterGuid)."""

from __future__ import annotations

import pytest

from oneroster.csv_files import HEADERS
from tests.imports.packages import district, package


@pytest.mark.parametrize(
    "cell, bad",
    [
        ("s1\ns1", "s1\ns1"),  # a line break inside a quoted cell is not a list separator
        ("s1,s 2", "s 2"),
        ("s1," + "x" * 256, "x" * 256),
    ],
)
def test_a_sourcedid_cell_that_is_not_guids_is_r102(tenancy, tmp_path, cell, bad):
    files = district("1.1", students=1)
    files["users.csv"][1]["orgSourcedIds"] = cell
    report = tenancy.run(package(tmp_path / "district.zip", "1.1", files))

    (row,) = [r for r in report.rows() if r["key"] == "u1" and r["file"] == "users.csv"]
    assert row["code"] == "R102", row
    assert f"orgSourcedIds {bad!r} is not a OneRoster GUID" in row["message"]


def test_ignored_and_metadata_columns_are_read_by_their_header(tenancy, tmp_path):
    """An unknown column is left out (a warning says so) without shifting the cells after it,
    and ``metadata.*`` cells are kept in the record's extra only when filled."""
    files = district("1.1", students=2)
    header = [
        "sourcedId",
        "nickname",
        *HEADERS["1.1"]["users.csv"][1:],
        "metadata.house",
        "metadata.bus",
    ]
    for user in files["users.csv"]:
        user |= {"nickname": "Ace", "metadata.house": "Red"}
    files["users.csv"][1]["metadata.bus"] = "12"

    report = tenancy.run(package(tmp_path / "d.zip", "1.1", files, headers={"users.csv": header}))

    assert report.status == "applied", report.summary
    assert {"file": "users.csv", "message": "unknown column 'nickname' ignored"} in (
        report.warnings
    )
    u1, u2 = tenancy.user("u1"), tenancy.user("u2")
    assert (u1.given_name, u1.family_name, u1.username) == ("Stua", "Denta", "Stua.Denta")
    assert u1.extra["metadata.house"] == "Red" and u1.extra["metadata.bus"] == "12"
    assert u2.extra["metadata.house"] == "Red" and "metadata.bus" not in u2.extra
