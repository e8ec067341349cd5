"""The staff app speaks a secretary's words (issue 14, item 13)."""

from __future__ import annotations

import re

from tests.web.conftest import ask_for_account, csrf_of, decide_request, sign_in


def test_password_states_are_described_not_named(app, district):
    client = sign_in(app, "skinner", district.admin_password)
    listing = client.get("/admin/users").text
    assert "Temporary password, not used yet" in listing  # Bart
    assert "No password yet" in listing  # Lisa
    assert ">issued<" not in listing and ">pending<" not in listing
    bart = client.get(f"/admin/users/{district.manual_student}").text
    assert "Credential state" not in bart and "Temporary password, not used yet" in bart


def test_a_reset_password_is_not_called_shown_once(app, district):
    client = sign_in(app, "skinner", district.admin_password)
    page = client.get(f"/admin/users/{district.manual_student}").text
    reset = client.post(
        f"/admin/users/{district.manual_student}/reset",
        data={"csrf_token": csrf_of(page), "kind": "temporary"},
    )
    assert "New temporary password set." in reset.text and "shown once" not in reset.text


def test_the_upload_field_accepts_excel_files(app, district):
    client = sign_in(app, "skinner", district.admin_password)
    upload = re.search(r'<input id="file"[^>]*>', client.get("/admin/import").text).group(0)
    assert ".xlsx" in upload


def test_decided_requests_stay_visible_with_their_outcome(app, district):
    teacher = sign_in(app, "edna", district.teacher_password)
    ask_for_account(teacher, given_name="Ralph", family_name="Wiggum", class_id=district.maths)
    admin = sign_in(app, "chalmers", district.school_admin_password)
    decide_request(admin, "approve")
    after = admin.get("/admin/requests").text
    assert "Ralph Wiggum" in after and "approved" in after and "Open account" in after


def test_the_menu_counts_the_requests_waiting_for_a_decision(app, district):
    admin = sign_in(app, "chalmers", district.school_admin_password)
    assert "waiting)" not in admin.get("/admin/users").text
    teacher = sign_in(app, "edna", district.teacher_password)
    sherri = {"given_name": "Sherri", "family_name": "Mackleberry", "class_id": district.maths}
    ask_for_account(teacher, **sherri)
    assert "(1 waiting)" in admin.get("/admin/users").text
    assert "waiting)" not in teacher.get("/admin/users").text


def test_every_import_report_links_a_legend_of_all_status_codes(app, district, tmp_path):
    from pathlib import Path

    from tests.web.test_import_pages import oneroster_zip, trial

    client = sign_in(app, "skinner", district.admin_password)
    report = trial(client, oneroster_zip(tmp_path)).text
    assert '<a href="/admin/import/codes">What the status codes mean</a>' in report
    legend = client.get("/admin/import/codes").text
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    documented = set(re.findall(r"^\| ([FRW]\d{3}) \|", readme, re.M))
    assert documented and all(f'id="{code}"' in legend for code in documented)
    assert "This student is managed by another system" in legend  # R109 in plain words


def _school_csv_trial(client, rows: str):
    form = client.get("/admin/import").text
    lincoln = re.search(r'<option value="([^"]+)"[^>]*>Lincoln<', form).group(1)
    header = "Student Full Name,Username,Year Group,Class,Gender,Pupil Premium\r\n"
    return client.post(
        "/admin/import",
        data={"csrf_token": csrf_of(form), "connection": "Manual", "school": lincoln},
        files={"file": ("pupils.csv", (header + rows).encode(), "text/csv")},
    )


def _apply(client, shown: str):
    import html

    from tests.web.test_import_pages import FIELDS

    fields = dict(re.findall(FIELDS, shown))
    fields["choice"] = html.unescape(fields["choice"])
    fields["form_token"] = re.search(r'name="form_token" value="([^"]+)"', shown).group(1)
    return client.post("/admin/import/apply", data=fields)


def _text(page: str) -> str:
    """What a reader sees: the page's text without tags, scripts or styles."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))


def test_an_import_report_names_changed_fields_in_words(app, district):
    # Issue 14 item 11: "Pupil Premium: No → Yes", never `demographic_flags: {} → {...}`,
    # `None →`, or a command-line option; R109 says who manages the student.
    client = sign_in(app, "skinner", district.admin_password)
    first = _school_csv_trial(client, "Bart Simpson,,4,Maths 4B,M,No\r\n")
    assert "Applied" in _apply(client, first.text).text
    shown = _school_csv_trial(
        client,
        "Bart Simpson,,4,Maths 4B,M,Yes\r\n"
        "Milhouse Van Houten,milhousevanhouten,4,Maths 4B,M,No\r\n"
        "Ralph Wiggum,,2,Maths 4B,M,\r\n",
    ).text
    text = _text(shown)
    assert "Pupil Premium: No → Yes" in text
    assert "Username: (empty) → ralphwiggum" in text
    assert "This student is managed by Clever" in text
    for log_speak in ("demographic_flags", "None", "{", "--"):
        assert log_speak not in text, log_speak
    latest = re.search(r"/admin/import/([0-9a-f-]{36})", client.get("/admin/import").text)
    stored = client.get(f"/admin/import/{latest.group(1)}")
    assert "Pupil Premium: No → Yes" in _text(stored.text)


def test_no_staff_page_names_a_command_line_option_or_command(app, district):
    # Issue 14 item 11: the web is for staff who never open a terminal.
    client = sign_in(app, "skinner", district.admin_password)
    pages = ["/admin/users", "/admin/users/new", "/admin/import", "/admin/import/codes"]
    pages += ["/admin/requests", "/admin/schools", "/admin/connections", "/admin/jobs"]
    pages += ["/admin/settings", "/admin/audit", f"/admin/users/{district.manual_student}"]
    found = {
        path: re.findall(r"rollcall [a-z]+|\s--[a-z-]+", _text(client.get(path).text))
        for path in pages
    }
    assert {path: hits for path, hits in found.items() if hits} == {}
