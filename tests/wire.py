"""What a refusal looks like on each wire: one checker per protocol's own error format.

A test that expects a refusal asserts the body the protocol promises, not only the status:

- SCIM (RFC 7644 section 3.12): the ``Error`` message schema, ``status`` as a string, a
  ``detail`` (optional in the RFC, always given here), and a ``scimType`` for the 400/409
  kinds the RFC names;
- OneRoster (1.1/1.2 REST binding, Appendix B ``imsx_StatusInfo``): ``imsx_codeMajor``
  ``failure`` with the spec's code minor;
- OAuth 2.0 (RFC 6749 section 5.2, RFC 7009, RFC 6750 section 3): a JSON ``error`` code;
- the admin API: ``error`` (what kind) and ``detail`` (in plain words);
- a person's browser: a page of its own saying what went wrong.
"""

from __future__ import annotations

from typing import Any

SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def scim_error(response: Any, status: int, scim_type: str | None = None) -> dict[str, Any]:
    """The SCIM ``Error`` body of ``response``, checked (RFC 7644 section 3.12)."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["schemas"] == [SCIM_ERROR], body
    assert body["status"] == str(status) and body["detail"], body
    if scim_type is not None:
        assert body.get("scimType") == scim_type, body
    return body


def code_minor(response: Any) -> str:
    """The first ``imsx_codeMinorFieldValue`` of a OneRoster status report."""
    fields = response.json()["imsx_CodeMinor"]["imsx_codeMinorField"]
    return str(fields[0]["imsx_codeMinorFieldValue"])


def imsx_failure(response: Any, status: int, minor: str) -> dict[str, Any]:
    """The OneRoster ``imsx_StatusInfo`` of a refused request, checked (Appendix B)."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert (body["imsx_codeMajor"], body["imsx_severity"]) == ("failure", "error"), body
    assert body["imsx_description"], body
    assert code_minor(response) == minor, body
    return body


def oauth_error(response: Any, status: int, error: str) -> dict[str, Any]:
    """The OAuth 2.0 error JSON of a refused request (RFC 6749 section 5.2)."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == error, body
    return body


def admin_error(response: Any, status: int, error: str) -> dict[str, Any]:
    """The admin API's JSON error (``server.web.problems.problem``): kind and plain ``detail``."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == error and body["detail"], body
    return body


def page_refusal(response: Any, status: int, text: str) -> None:
    """A refusal shown to a person as a page of its own (no redirect), saying ``text``."""
    assert response.status_code == status, response.text
    assert "location" not in response.headers, response.headers
    assert response.headers["content-type"].startswith("text/html"), response.headers
    assert text in response.text, response.text
