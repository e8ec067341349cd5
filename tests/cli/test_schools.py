"""``rollcall school …``: a district without a SIS file adds its schools (issue 10, defect 5)."""

from __future__ import annotations

import json

from tests.imports.packages import district, package


def test_add_list_rename_reparent_and_deactivate_a_school(rollcall):
    code, out, _ = rollcall("school", "add", "d1", "--name", "Ashby District", "--type", "district")
    assert code == 0 and "Added district Ashby District (d1)." in out
    code, out, _ = rollcall("school", "add", "ash-01", "--name", "Ashby Primary", "--json")
    added = json.loads(out)
    assert code == 0
    assert (added["type"], added["owner"], added["managed_by"]) == ("school", "Manual", None)
    code, out, _ = rollcall("school", "set", "ash-01", "--name", "Ashby Juniors", "--parent", "d1")
    assert code == 0 and "Changed name, parent_id of Ashby Juniors." in out
    _, out, _ = rollcall("school", "list", "--json")
    listed = {row["sourced_id"]: row for row in json.loads(out)}
    assert list(listed) == ["d1", "ash-01"]  # the district first
    assert (listed["ash-01"]["name"], listed["ash-01"]["parent"]) == ("Ashby Juniors", "d1")
    assert rollcall("school", "deactivate", "ash-01")[0] == 0
    _, out, _ = rollcall("school", "list", "--json")
    assert [row["sourced_id"] for row in json.loads(out)] == ["d1"]
    _, out, _ = rollcall("school", "list", "--all", "--json")
    assert {row["sourced_id"]: row["status"] for row in json.loads(out)}["ash-01"] == "inactive"
    code, out, _ = rollcall("school", "reactivate", "ash-01", "--json")
    assert code == 0 and json.loads(out)["active"] is True


def test_bad_school_input_is_refused_with_a_clear_error(rollcall):
    rollcall("school", "add", "s1", "--name", "Ashby Primary")
    code, _, err = rollcall("school", "add", "s1", "--name", "Again")
    assert code == 1 and "The sourcedId 's1' is already used." in err
    code, _, err = rollcall("school", "add", "s 2", "--name", "Space")
    assert code == 1 and "Invalid sourcedId 's 2'" in err
    code, _, err = rollcall("school", "add", "s2", "--name", " ")
    assert code == 1 and "A school needs a name." in err
    code, _, err = rollcall("school", "add", "s2", "--name", "Orphan", "--parent", "nope")
    assert code == 1 and "No parent org with sourcedId 'nope'." in err
    rollcall("school", "add", "s3", "--name", "Child", "--parent", "s1")
    code, _, err = rollcall("school", "set", "s1", "--parent", "s3")
    assert code == 1 and "cannot be its own parent or ancestor" in err
    code, _, err = rollcall("school", "set", "nope", "--name", "X")
    assert code == 1 and "No school with sourcedId 'nope'." in err
    _, out, _ = rollcall("school", "list", "--json")
    assert sorted(row["sourced_id"] for row in json.loads(out)) == ["s1", "s3"]


def test_a_school_a_sync_connection_owns_changes_by_hand_only_with_override(rollcall, tmp_path):
    rollcall("connection", "add", "SIS", "--kind", "oneroster")
    rollcall("import", str(package(tmp_path / "sis.zip", "1.1", district())), "--connection", "SIS")
    code, _, err = rollcall("school", "set", "s1", "--name", "Renamed")
    assert code == 1 and "managed by SIS" in err
    code, _, err = rollcall("school", "deactivate", "s1")
    assert code == 1 and "managed by SIS" in err
    code, out, _ = rollcall("school", "set", "s1", "--name", "Renamed", "--override", "--json")
    assert code == 0 and json.loads(out)["changes"] == {"name": ["Lincoln Elementary", "Renamed"]}
    assert json.loads(out)["managed_by"] == "SIS"
