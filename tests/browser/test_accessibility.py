"""Every staff page passes axe-core's automated checks (issue 14, item 8).

axe-core 4.14.1 (MPL-2.0) is vendored from the npm registry into ``tests/browser/vendor``
(``npm pack axe-core@4``); it runs inside headless Chromium on the live pages.
"""

from __future__ import annotations

import pytest

from tests.browser.conftest import axe_violations
from tests.browser.test_staff_in_chromium import sign_in

PAGES = [
    "/admin/users",
    "/admin/users/new",
    "/admin/requests",
    "/admin/import",
    "/admin/schools",
    "/admin/connections",
    "/admin/audit",
    "/admin/settings",
]


def test_every_admin_page_has_no_axe_violations(axe_page, live_server, district):
    sign_in(axe_page, live_server, "skinner", district.admin_password)
    pages = [*PAGES, f"/admin/users/{district.manual_student}"]
    problems = {}
    for path in pages:
        axe_page.goto(f"{live_server}{path}")
        if found := axe_violations(axe_page):
            problems[path] = found
    assert problems == {}


def test_teacher_pages_and_print_sheets_have_no_axe_violations(axe_page, live_server, district):
    sign_in(axe_page, live_server, "edna", district.teacher_password)
    problems = {}
    for path in ("/admin/users", "/admin/requests"):
        axe_page.goto(f"{live_server}{path}")
        if found := axe_violations(axe_page):
            problems[path] = found
    axe_page.get_by_role("link", name="Users").click()
    axe_page.get_by_label("Select all on this page").check()
    axe_page.get_by_label("Bulk operation", exact=True).select_option("print_paper_saver")
    axe_page.get_by_role("button", name="Apply to selected").click()
    if found := axe_violations(axe_page):
        problems["print sheet"] = found
    assert problems == {}


@pytest.mark.parametrize("width", [390, 1200])
def test_every_staff_page_fits_a_phone_and_a_laptop_screen(browser, live_server, district, width):
    # A phone (390 px) and a laptop (1200 px): no page scrolls sideways (the import form's
    # selects once ran 108 px past a laptop's edge).
    context = browser.new_context(viewport={"width": width, "height": 844})
    page = context.new_page()
    try:
        sign_in(page, live_server, "skinner", district.admin_password)
        wide = {}
        for path in [*PAGES, f"/admin/users/{district.manual_student}"]:
            page.goto(f"{live_server}{path}")
            if (scrolled := page.evaluate("document.documentElement.scrollWidth")) > width:
                wide[path] = scrolled
        assert wide == {}
    finally:
        context.close()
