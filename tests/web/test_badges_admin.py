"""QR badges from the admin UI: print a sheet (issuing where needed), regenerate, void."""

from __future__ import annotations

from server.domain import badges, users
from server.domain.actors import system_actor
from server.domain.tenants import get_tenant
from tests.web.conftest import bulk, csrf_of, sign_in


def _live_badge(database, user_id):
    with database.session() as session:
        actor = system_actor(get_tenant(session, "Springfield").id)
        return badges.live_badge(session, users.get_user(session, actor, user_id))


def test_admin_prints_badges_for_young_students_only(app, district, database):
    client = sign_in(app, "skinner", district.admin_password)
    sheet = bulk(client, "print_badges", [district.other_student, district.manual_student])
    assert sheet.status_code == 200
    assert sheet.text.count('src="data:image/svg+xml') == 1  # Lisa, grade 02
    assert "QR badge for Bart Simpson" in sheet.text and "grade" in sheet.text.lower()
    first = _live_badge(database, district.other_student)
    again = bulk(client, "print_badges", [district.other_student])
    assert again.text.count('src="data:image/svg+xml') == 1
    assert _live_badge(database, district.other_student).id == first.id  # reprinted, not replaced


def test_regenerate_with_a_pin_then_void(app, district, database):
    client = sign_in(app, "skinner", district.admin_password)
    page = client.get(f"/admin/users/{district.other_student}").text
    assert "No live badge." in page
    issued = client.post(
        f"/admin/users/{district.other_student}/badge",
        data={"csrf_token": csrf_of(page), "pin": "2468"},
    )
    assert "New badge issued" in issued.text and "with a PIN" in issued.text
    assert _live_badge(database, district.other_student).pin_hash
    bad_pin = client.post(
        f"/admin/users/{district.other_student}/badge",
        data={"csrf_token": csrf_of(page), "pin": "12"},
    )
    assert bad_pin.status_code == 400 and "4 to 8 digits" in bad_pin.text
    voided = client.post(
        f"/admin/users/{district.other_student}/badge",
        data={"csrf_token": csrf_of(page), "do": "void"},
    )
    assert "Badge voided." in voided.text and _live_badge(database, district.other_student) is None
