"""``rollcall connection add|set NAME --default-role --default-school`` (issue 10, defect 4)."""

from __future__ import annotations

import json


def test_connection_defaults_are_set_at_add_changed_and_cleared(rollcall):
    rollcall("school", "add", "north", "--name", "North High")
    rollcall("school", "add", "south", "--name", "South High")
    code, out, _ = rollcall(
        "connection", "add", "Okta", "--kind", "scim", "--json",
        "--default-role", "Student", "--default-school", "north",
    )  # fmt: skip
    added = json.loads(out)
    assert code == 0
    assert (added["default_role"], added["default_school"], added["incomplete"]) == (
        "student",
        "north",
        0,
    )
    code, out, _ = rollcall("connection", "set", "Okta", "--default-school", "south", "--json")
    assert code == 0 and json.loads(out)["default_school"] == "south"
    code, out, _ = rollcall("connection", "set", "Okta", "--default-role", "", "--json")
    assert json.loads(out)["changes"] == {"default_role": ["student", None]}
    _, out, _ = rollcall("connection", "list", "--json")
    okta = {row["name"]: row for row in json.loads(out)}["Okta"]
    assert (okta["default_role"], okta["default_school"]) == (None, "south")


def test_bad_defaults_are_refused_and_change_nothing(rollcall):
    rollcall("school", "add", "north", "--name", "North High")
    rollcall("connection", "add", "Okta", "--kind", "scim", "--default-school", "north")
    code, _, err = rollcall("connection", "set", "Okta", "--default-role", "wizard")
    assert code == 1 and "Unknown role 'wizard'" in err
    code, _, err = rollcall("connection", "set", "Okta", "--default-school", "nope")
    assert code == 1 and "No school with sourcedId 'nope'." in err
    code, _, err = rollcall("connection", "set", "Manual", "--default-role", "student")
    assert code == 1 and "The manual connection pushes nothing" in err
    code, _, err = rollcall("connection", "set", "Okta")
    assert code == 2 and "needs --default-role" in err
    code, _, err = rollcall("connection", "set", "Nope", "--default-role", "student")
    assert code == 1 and "No connection named 'Nope'" in err
    code, _, _ = rollcall("connection", "add", "X", "--kind", "scim", "--default-role", "wizard")
    assert code == 1
    _, out, _ = rollcall("connection", "list", "--json")
    rows = {row["name"]: row for row in json.loads(out)}
    assert "X" not in rows  # refused as a whole, not half-written
    assert (rows["Okta"]["default_role"], rows["Okta"]["default_school"]) == (None, "north")
