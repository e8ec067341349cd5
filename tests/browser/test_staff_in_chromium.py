"""Staff stories in a real browser (headless Debian Chromium via Playwright)."""

from __future__ import annotations

import re

from tests.browser.conftest import screenshot


def sign_in(page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/admin/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/admin/users.*"))


def test_teacher_resets_a_class_and_prints_the_paper_saver_sheet(page, live_server, district):
    sign_in(page, live_server, "edna", district.teacher_password)
    page.get_by_label("Class").select_option(label="Maths 4B")
    page.get_by_role("button", name="Search").click()
    page.get_by_label("Select all on this page").check()
    page.get_by_label("Bulk operation", exact=True).select_option("reset_temporary")
    page.get_by_role("button", name="Apply to selected").click()
    status = page.get_by_role("status")
    assert "Reset 1 student password(s)." in status.inner_text()
    assert "managed by Clever" in status.inner_text()
    handover = page.get_by_role("form", name="Print the new passwords")
    assert "these 1 student(s)" in handover.inner_text()  # Bart only: not Milhouse (SSO)
    screenshot(page, "users-teacher")
    page.get_by_label("Select all on this page").check()
    page.get_by_label("Bulk operation", exact=True).select_option("print_paper_saver")
    page.get_by_role("button", name="Apply to selected").click()
    cards = page.locator("section.card")
    assert cards.count() == 2
    bart = page.get_by_role("region", name="Sign-in card for Bart Simpson")
    assert re.search(r"Password\s+[A-Za-z0-9-]{8,}", bart.inner_text())
    assert (
        "Signs in with Clever"
        in page.get_by_role("region", name=re.compile("Milhouse")).inner_text()
    )
    page.emulate_media(media="print")
    assert not page.locator(".toolbar").is_visible()
    screenshot(page, "print-paper-saver")


def test_admin_finds_an_inactive_student_and_reactivates_them(page, live_server, district):
    sign_in(page, live_server, "skinner", district.admin_password)
    page.get_by_label("Search", exact=True).fill("Muntz")
    page.get_by_role("button", name="Search").click()
    assert "Inactive users are hidden" in page.locator(".empty").inner_text()
    page.get_by_label("Include inactive users").check()
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="Muntz, Nelson").click()
    page.get_by_role("button", name="Reactivate").click()
    assert "The account is active." in page.get_by_role("status").inner_text()
    screenshot(page, "manage-user")


def test_admin_tries_to_change_an_sso_students_password_and_sees_why_not(
    page, live_server, district
):
    sign_in(page, live_server, "skinner", district.admin_password)
    page.get_by_label("Search", exact=True).fill("Milhouse")
    page.get_by_role("button", name="Search").click()
    assert page.get_by_text("SSO: Clever").first.is_visible()
    page.get_by_role("link", name=re.compile("Van Houten")).click()
    assert "reset it in Clever, not here" in page.get_by_role("group", name="Sign-in").inner_text()
    assert page.get_by_role("textbox", name="Username").get_attribute("readonly") is not None
    screenshot(page, "sso-guard")
    page.go_back()
    page.get_by_label("Select Milhouse Van Houten").check()
    page.get_by_label("Bulk operation", exact=True).select_option("reset_permanent")
    page.get_by_role("button", name="Apply to selected").click()
    status = page.get_by_role("status").inner_text()
    assert "Reset 0 student password(s)." in status
    assert "This account is managed by Clever. Change it in Clever" in status


def test_a_trial_run_import_shows_an_r104_row(page, live_server, district, tmp_path):
    from tests.web.test_import_pages import oneroster_zip

    upload = tmp_path / "delta.zip"
    upload.write_bytes(oneroster_zip(tmp_path))
    sign_in(page, live_server, "skinner", district.admin_password)
    page.get_by_role("link", name="Import").click()
    page.get_by_label("File (CSV, Excel .xlsx or zip, up to 5 MB)").set_input_files(str(upload))
    page.get_by_role("button", name="Run a trial").click()
    assert "Trial run" in page.get_by_role("heading", level=1).inner_text()
    row = page.get_by_role("row", name=re.compile("sis-twin"))
    assert "R104" in row.inner_text() and "already used" in row.inner_text()
    screenshot(page, "import-trial-run")
    apply = page.get_by_role("button", name="Apply this import")
    assert apply.is_disabled()
    looks = "b => getComputedStyle(b).backgroundColor"
    disabled_look = apply.evaluate(looks)
    page.get_by_label("Skip the rows with errors").check()
    assert apply.is_enabled()
    assert apply.evaluate(looks) != disabled_look, "a disabled button must look disabled"
    page.get_by_role("button", name="Apply this import").click()
    assert "applied" in page.get_by_role("heading", level=1).inner_text()


def test_every_page_works_under_the_content_security_policy(page, live_server, district):
    # Issue 11 HTTP hardening: scripts run only from static files; Chromium reports anything
    # the policy blocks on the console.
    blocked: list[str] = []
    page.on(
        "console",
        lambda message: (
            blocked.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    sign_in(page, live_server, "skinner", district.admin_password)
    page.get_by_label("Select all on this page").check()  # admin.js ticks every row
    rows = page.locator("input[name=user_id]")
    assert rows.count() > 1 and all(rows.nth(i).is_checked() for i in range(rows.count()))
    for path in ("/admin/users/new", "/admin/import", "/admin/connections", "/admin/audit"):
        page.goto(f"{live_server}{path}")
    page.goto(f"{live_server}/login")
    page.goto(f"{live_server}/login/badge")
    assert blocked == []


def test_choosing_a_school_leaves_only_its_classes(page, live_server, district):
    sign_in(page, live_server, "skinner", district.admin_password)
    page.goto(f"{live_server}/admin/users/new")
    classes = page.get_by_label("Class")
    page.get_by_label("School").select_option(label="Lincoln")
    assert classes.locator("option", has_text="Maths 4B").is_enabled()
    page.get_by_label("School").select_option(label="Other")
    assert classes.locator("option", has_text="Maths 4B").is_disabled()
    assert classes.input_value() == ""


def test_admin_is_offered_the_existing_account_before_creating_a_duplicate(
    page, live_server, district
):
    sign_in(page, live_server, "skinner", district.admin_password)
    page.goto(f"{live_server}/admin/users/new")
    page.get_by_label("First name").fill("Bart")
    page.get_by_label("Last name").fill("Simpson")
    page.get_by_label("School").select_option(label="Lincoln")
    page.get_by_label("Class").select_option(label="Maths 4B")
    page.get_by_role("button", name="Create account").click()
    offer = page.get_by_role("group", name="Possible duplicates")
    assert "Bart Simpson (bartsimpson)" in offer.inner_text()
    assert page.get_by_role("button", name="Create anyway").is_visible()
    screenshot(page, "duplicate-offer")
    offer.get_by_role("link", name="Open existing account").click()
    assert page.get_by_role("heading", level=1).inner_text().startswith("Bart Simpson")


def test_district_admin_enables_badges_on_the_settings_page(page, live_server, district):
    sign_in(page, live_server, "skinner", district.admin_password)
    page.get_by_role("link", name="Settings").click()
    page.get_by_label("04").check()
    page.get_by_label("Password policy").select_option("classic")
    page.get_by_role("button", name="Save settings").click()
    assert "Saved: badge grades, password policy." in page.get_by_role("status").inner_text()
    assert page.get_by_label("04").is_checked()
    screenshot(page, "settings")
