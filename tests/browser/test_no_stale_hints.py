"""No hint on a staff page points at something that is not there, and none says "shown once"
of a secret the page shows again (issue 14, item 13), walked in headless Chromium."""

from __future__ import annotations

import re

from server.domain import users
from server.domain.actors import system_actor
from server.domain.tenants import get_tenant
from tests.browser.test_accessibility import PAGES
from tests.browser.test_staff_in_chromium import sign_in

# What a page names in quotes ("Export for upload") must be a control or heading on it.
CONTROLS = "a, button, option, label, legend, h1, h2, h3, th"
ONCE = re.compile(r"shown (only )?once|only once", re.I)


def _hints(page) -> list[str]:
    return page.locator(".hint, .notice, [role=status]").all_inner_texts()


def _stale(page) -> list[str]:
    """The hints of the page as it is that name what is not on it."""
    controls = " | ".join(page.locator(CONTROLS).all_inner_texts()).casefold()
    problems = []
    for hint in _hints(page):
        if ONCE.search(hint):
            problems.append(f"says shown once: {hint!r}")
        for quoted in re.findall(r"[\"“]([^\"”]{3,60})[\"”]", hint):
            if quoted.casefold() not in controls:
                problems.append(f"names {quoted!r}, which is not on the page: {hint!r}")
        marked = (
            page.locator("label.required").count() + page.locator("label", has_text="*").count()
        )
        if "marked *" in hint and not marked:
            problems.append(f"names fields marked *, and none is: {hint!r}")
        if (
            re.search(r"\bsearch first\b", hint, re.I)
            and not page.get_by_role("link", name=re.compile("search", re.I)).count()
        ):
            problems.append(f"asks to search first, with no search here: {hint!r}")
    return problems


def test_no_staff_page_has_a_stale_hint(page, live_server, district):
    sign_in(page, live_server, "skinner", district.admin_password)
    problems = {}
    for path in [*PAGES, f"/admin/users/{district.manual_student}"]:
        page.goto(f"{live_server}{path}")
        if found := _stale(page):
            problems[path] = found
    page.context.clear_cookies()
    sign_in(page, live_server, "edna", district.teacher_password)
    for path in ("/admin/users", "/admin/requests", f"/admin/users/{district.manual_student}"):
        page.goto(f"{live_server}{path}")
        if found := _stale(page):
            problems[f"teacher {path}"] = found
    assert problems == {}


def test_a_new_token_is_not_called_shown_once_as_a_reload_shows_it_again(
    page, live_server, district
):
    sign_in(page, live_server, "skinner", district.admin_password)
    page.get_by_role("link", name="Connections").click()
    page.get_by_role("button", name="Rotate token").first.click()
    token = page.locator("#token").inner_text()
    page.reload()
    assert page.locator("#token").inner_text() == token
    assert _stale(page) == []


def test_issuing_a_badge_offers_the_print_it_names(page, live_server, district):
    sign_in(page, live_server, "skinner", district.admin_password)
    page.get_by_role("link", name="Settings").click()
    page.get_by_label("04").check()
    page.get_by_role("button", name="Save settings").click()
    page.goto(f"{live_server}/admin/users/{district.manual_student}")
    page.get_by_role("button", name="Issue badge").click()
    assert "print it below" in page.get_by_role("status").inner_text()
    page.get_by_role("button", name="Print badge").click()
    assert page.get_by_role("region", name=re.compile("Bart Simpson")).count() == 1


def test_an_inactive_students_page_does_not_ask_for_an_address_it_has(
    page, live_server, district, database
):
    with database.session() as session:
        actor = system_actor(get_tenant(session, "Springfield").id)
        nelson = users.get_user(session, actor, district.inactive_student)
        users.update_user(session, actor, nelson, {"email": "nelson@springfield.example"})
    sign_in(page, live_server, "skinner", district.admin_password)
    page.goto(f"{live_server}/admin/users/{district.inactive_student}")
    hints = " ".join(_hints(page))
    assert "need an email address" not in hints
    assert "reactivate it first" in hints
