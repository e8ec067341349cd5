"""Generated requests (Schemathesis, from our own openapi.json) never get a server error.

Every operation of both versions is called with values Hypothesis makes up for its path and
query parameters (filters, sorts, field lists, limits, offsets, sourcedIds, bodies): the answer
must be a OneRoster object or a status report, never a 500. PUT and DELETE are sent with a
reader's token (so they are refused with 401 and the shared live data stays as the other
checks expect); their bodies are checked in tests/oneroster/test_pushes.py, and chains of
pushes and reads in tests/oneroster/test_generated_requests.py.
"""

from __future__ import annotations

from typing import Any

import schemathesis

from conformance.oneroster.conftest import LiveServer
from tests.generated import fuzz_operations, no_server_error


def _status_report_on_failure(response: Any, case: Any) -> None:
    no_server_error(response, case)
    if response.status_code >= 400:
        where = (case.method, case.formatted_path, response.text[:300])
        assert response.json()["imsx_codeMajor"] == "failure", where


def test_generated_requests_never_get_a_server_error(live: LiveServer):
    schema = schemathesis.openapi.from_url(f"{live.url}/ims/oneroster/openapi.json")
    headers = {"Authorization": f"Bearer {live.token}"}
    checked = fuzz_operations(
        schema,
        lambda case: headers,
        examples=6,
        verdict=_status_report_on_failure,
        base_url=live.url,
        timeout=30,
    )
    assert checked == 94  # 2 versions x (12 collections x 2 + 17 nested) GETs, 6 PUTs, 6 DELETEs
