"""Generated requests (Schemathesis, from our own openapi.json) never get a server error.

Every operation of both versions is called with values Hypothesis makes up for its path and
query parameters (filters, sorts, field lists, limits, offsets, sourcedIds, bodies): the answer
must be a OneRoster object or a status report, never a 500. PUT and DELETE are sent with a
reader's token (so they are refused with 401 and the shared live data stays as the other
checks expect); their bodies are checked in tests/oneroster/test_pushes.py.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings

from conformance.oneroster.conftest import LiveServer


def test_generated_requests_never_get_a_server_error(live: LiveServer):
    schema = schemathesis.openapi.from_url(f"{live.url}/ims/oneroster/openapi.json")
    headers = {"Authorization": f"Bearer {live.token}"}
    checked = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=True,
        )
        def call(case):
            response = case.call(base_url=live.url, headers=headers, timeout=30)
            where = (case.method, case.formatted_path, response.text[:300])
            assert response.status_code < 500, where
            if response.status_code >= 400:
                assert response.json()["imsx_codeMajor"] == "failure", where

        call()
        checked += 1
    assert checked == 94  # 2 versions x (12 collections x 2 + 17 nested) GETs, 6 PUTs, 6 DELETEs
