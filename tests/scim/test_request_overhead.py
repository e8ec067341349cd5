"""Issue 15: the part of a SCIM request that is not its unit of work, counted (never timed).

A PATCH of ``active`` cost ~2.5 ms of server CPU, a quarter of it on the event loop's thread
(the middlewares, reading the request, the request log line) and much of the rest around the
unit of work in the worker thread. These tests count what that part repeats per request:
route walks, system calls on the event loop's thread, log lines written there.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from starlette.testclient import TestClient

from server.app import create_app
from tests.scim.helpers import PATCH, IdP


class Calls:
    """Counts the calls of the functions whose code ``wanted`` picks, in every thread started
    after it (the app's portal and worker threads: enter it before the TestClient), while
    :meth:`counting`."""

    def __init__(self, wanted: Callable[[Any], bool]) -> None:
        self.wanted = wanted
        self.on = False
        self.seen = 0

    def _count(self, frame: Any, event: str, arg: Any) -> None:
        if self.on and event == "call" and self.wanted(frame.f_code):
            self.seen += 1

    def __enter__(self) -> Calls:
        threading.setprofile(self._count)
        sys.setprofile(self._count)
        return self

    def __exit__(self, *_: object) -> None:
        sys.setprofile(None)
        threading.setprofile(None)

    @contextmanager
    def counting(self) -> Iterator[None]:
        self.on = True
        try:
            yield
        finally:
            self.on = False


def _set_active(idp: IdP, user_id: str, active: bool) -> Any:
    body = {
        "schemas": [PATCH],
        "Operations": [{"op": "replace", "path": "active", "value": active}],
    }
    return idp.request("PATCH", f"/Users/{user_id}", json=body)


def test_requests_on_many_users_walk_the_route_table_once(settings, database, district) -> None:
    """scim2-server's route table was walked once per new path: a PATCH or a read of each of
    20,000 users missed the cache of targets by path every time. A path naming a resource is
    now routed by its shape (method and endpoint), then given its id."""
    from scim2_server import routing

    walks = Calls(lambda code: code is routing.match.__code__)
    with walks, TestClient(create_app(settings, database=database)) as client:
        idp = IdP(client, district.token)
        pupils = [idp.create_user(f"routed.{n}")["id"] for n in range(4)]
        assert _set_active(idp, pupils[0], False).status_code == 200  # the shapes seen once
        assert idp.get(f"/Users/{pupils[0]}").status_code == 200
        with walks.counting():
            for pupil in pupils[1:]:
                answer = _set_active(idp, pupil, False)
                assert answer.status_code == 200 and answer.json()["id"] == pupil, answer.text
                read = idp.get(f"/Users/{pupil}")
                assert read.status_code == 200 and read.json()["active"] is False
        missing = idp.get("/Users/no-such-user")
        assert missing.status_code == 404, missing.text
        wrong = idp.request("POST", f"/Users/{pupils[1]}", json={})
        assert wrong.status_code == 405, wrong.text
    assert walks.seen == 0, walks.seen
