"""scim2-tester (what ``scim2 test`` of scim2-cli runs) against a live Rollcall.

Every check must be SUCCESS, with one documented exception: scim2-tester 0.5 runs its
``check_add_attribute`` checks one after the other on the same resource, so after adding the
whole education extension (which holds multi-valued ``roles`` and ``grades``), adding
``roles``/``grades`` again appends to them, as RFC 7644 §3.5.2.1 requires ("the value(s) are
added to the existing set"), while the tester compares with plain equality. Such a result is
accepted only when the returned list is exactly the earlier values followed by the added ones.

A second accepted deviation: ``check_remove_attribute`` removes ``active`` from a User and
expects it unassigned, but Rollcall returns the effective value (issue 10: a user without
``active`` is active, and every representation says so). RFC 7643 §4.1.1: "The definitive
meaning of this attribute is determined by the service provider"; RFC 7644 §3.5.1, for
attributes a client leaves out: "the service provider MAY assign a default value to the final
resource representation". Accepted only for ``active`` answered ``true``.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

from conformance.scim.conftest import LiveScim
from scim.schemas import EDUCATION_USER

APPENDING_ATTRIBUTES = {f"{EDUCATION_USER}:roles", f"{EDUCATION_USER}:grades"}


def is_rfc_append(result: Any) -> bool:
    """An add check that failed only because the server appended, as the RFC says."""
    data = result.data if isinstance(result.data, dict) else {}
    expected, actual = data.get("expected"), data.get("modify_actual")
    return (
        result.title == "check_add_attribute"
        and data.get("urn") in APPENDING_ATTRIBUTES
        and isinstance(expected, list)
        and isinstance(actual, list)
        and len(actual) > len(expected)
        and actual[len(actual) - len(expected) :] == expected
    )


def is_effective_active(result: Any) -> bool:
    """The removal of ``active`` answered with the default it means, ``true``."""
    data = result.data if isinstance(result.data, dict) else {}
    return (
        result.title == "check_remove_attribute"
        and str(data.get("urn", "")).lower() == "active"
        and True in (data.get("modify_actual"), data.get("actual_value"))
    )


def test_every_scim2_tester_check_succeeds(live_scim: LiveScim) -> None:
    random.seed(7243)  # scim2-tester draws its values with `random`: make the run reproducible
    http = Client(base_url=live_scim.url, headers={"Authorization": f"Bearer {live_scim.token}"})
    with http:
        results = check_server(SyncSCIMClient(http))
    failures = [
        f"{r.status.name} {r.title} [{r.resource_type}]: {r.reason}"
        for r in results
        if r.status != Status.SUCCESS and not is_rfc_append(r) and not is_effective_active(r)
    ]
    assert len(results) > 150, "scim2-tester ran too few checks"
    assert failures == [], f"{Counter(r.status.name for r in results)}\n" + "\n".join(failures)
