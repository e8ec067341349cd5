"""Printed sign-in addresses are the configured one, and staff are warned when it is not the
address they are using (issue 14, item 1)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from server.app import create_app
from tests.web.conftest import csrf_of, sign_in

PRINT = {"action": "print_paper_saver"}
PDF = {"action": "pdf_paper_saver"}


@pytest.fixture
def matching_app(settings, database):
    """The app configured with the very address the test client uses."""
    return create_app(replace(settings, issuer="http://testserver"), database=database)


def _bulk(client, district, extra: dict[str, str]):
    csrf = csrf_of(client.get("/admin/users").text)
    data = {"csrf_token": csrf, "user_id": [district.manual_student], **extra}
    return client.post("/admin/users/bulk", data=data)


def test_credential_sheet_warns_when_the_printed_address_is_not_the_one_in_use(app, district):
    client = sign_in(app, "skinner", district.admin_password)
    sheet = _bulk(client, district, PRINT)
    assert sheet.status_code == 200
    assert "Check the sign-in address." in sheet.text
    assert "http://127.0.0.1:8000" in sheet.text and "http://testserver" in sheet.text


def test_badge_and_activation_sheets_and_connections_page_warn_too(app, district):
    client = sign_in(app, "skinner", district.admin_password)
    assert "Check the sign-in address." in _bulk(client, district, {"action": "print_badges"}).text
    qr_sheet = _bulk(client, district, {"action": "print_activation_qr"})
    assert "Check the sign-in address." in qr_sheet.text
    assert "Check the sign-in address." in client.get("/admin/connections").text


def test_no_warning_when_the_configured_address_is_in_use(matching_app, district):
    client = sign_in(matching_app, "skinner", district.admin_password)
    sheet = _bulk(client, district, PRINT)
    assert "Check the sign-in address." not in sheet.text
    assert "http://testserver/login" in sheet.text
    assert "Check the sign-in address." not in client.get("/admin/connections").text
    pdf = _bulk(client, district, PDF)
    assert pdf.headers["content-type"] == "application/pdf"


def test_pdf_with_an_unchecked_address_is_refused_until_staff_confirm_it(app, district):
    client = sign_in(app, "skinner", district.admin_password)
    refused = _bulk(client, district, PDF)
    assert refused.status_code == 409
    assert refused.headers["content-type"].startswith("text/html")
    assert "Confirm that students can open the sign-in address" in refused.text
    assert 'name="address_checked"' in refused.text
    confirmed = _bulk(client, district, {**PDF, "address_checked": "1"})
    assert confirmed.status_code == 200
    assert confirmed.content.startswith(b"%PDF")
