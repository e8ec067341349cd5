"""Deactivation asks first and states the count (issue 14, item 10)."""

from __future__ import annotations

import re

from sqlalchemy import select

from server.db import User
from tests.web.conftest import bulk, csrf_of, sign_in


def _status(database, user_id: str) -> str:
    with database.session() as session:
        return session.scalar(select(User.status).where(User.id == user_id))


def test_deactivating_one_student_asks_by_name_first(app, district, database):
    client = sign_in(app, "skinner", district.admin_password)
    page = client.get(f"/admin/users/{district.manual_student}").text
    asked = client.post(
        f"/admin/users/{district.manual_student}/status",
        data={"csrf_token": csrf_of(page), "active": "0"},
    )
    assert "Deactivate Bart Simpson&#39;s account?" in asked.text
    assert "Deactivate 1 account" in asked.text
    assert _status(database, district.manual_student) == "active"
    confirm = dict(re.findall(r'name="(active|confirmed)" value="([^"]*)"', asked.text))
    done = client.post(
        f"/admin/users/{district.manual_student}/status",
        data={"csrf_token": csrf_of(asked.text), **confirm},
    )
    assert "The account is inactive." in done.text
    assert _status(database, district.manual_student) == "inactive"


def test_deactivating_all_matching_a_search_states_the_count(app, district, database):
    client = sign_in(app, "skinner", district.admin_password)
    asked = bulk(client, "deactivate", [], scope="all", q="simpson")
    assert "Deactivate all 2 users matching this search?" in asked.text
    assert "Bart Simpson" in asked.text and "Lisa Simpson" in asked.text
    assert _status(database, district.manual_student) == "active"
    fields = re.findall(
        r'<input type="hidden" name="(user_id|action|confirmed|q)" value="([^"]*)"', asked.text
    )
    data: dict[str, list[str]] = {"csrf_token": [csrf_of(asked.text)]}
    for name, value in fields:
        data.setdefault(name, []).append(value)
    done = client.post("/admin/users/bulk", data=data)
    assert "Deactivated 2 account(s)" in done.text
    assert _status(database, district.other_student) == "inactive"
