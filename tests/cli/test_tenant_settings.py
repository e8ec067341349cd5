"""``rollcall tenant set``: the district settings of the Settings page (issue 14, item 7)."""

from __future__ import annotations

import json


def test_tenant_set_changes_and_shows_the_district_settings(rollcall):
    code, out, _ = rollcall("tenant", "set", "--badge-grades", "KG,1", "--retention-days", "45")
    assert code == 0 and "badge_grades" in out and "retention_days: 30 → 45" in out
    code, out, _ = rollcall("tenant", "set", "--json")
    shown = json.loads(out)
    assert shown["badge_grades"] == ["KG", "01"] and shown["retention_days"] == 45
    assert shown["changed"] == {}


def test_tenant_set_refuses_a_bad_value_and_keeps_the_old_one(rollcall):
    code, _, err = rollcall("tenant", "set", "--password-policy", "weak")
    assert code == 1 and "password_policy must be one of: default, classic" in err
    _, out, _ = rollcall("tenant", "set", "--json")
    assert json.loads(out)["password_policy"] == "default"


def test_tenant_set_keeps_provider_attributes_and_clears_them(rollcall):
    # issue 12 item 1: the allow-list of provider attributes, from the command line
    code, out, _ = rollcall("tenant", "set", "--keep-provider-attributes", "title,name.formatted")
    assert code == 0, out
    _, out, _ = rollcall("tenant", "set", "--json")
    assert json.loads(out)["keep_provider_attributes"] == ["name.formatted", "title"]
    code, _, err = rollcall("tenant", "set", "--keep-provider-attributes", "a b:c!")
    assert code == 1 and "is not an attribute path" in err
    code, out, _ = rollcall("tenant", "set", "--keep-provider-attributes", "", "--json")
    assert code == 0 and json.loads(out)["keep_provider_attributes"] == []
