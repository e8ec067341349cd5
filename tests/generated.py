"""Requests generated from our own OpenAPI documents (Schemathesis), shared by the surfaces' tests.

Two ways of calling: every operation on its own (:func:`fuzz_operations`) and chains that follow
the documents' Link Objects, create → read → change → delete (:func:`fuzz_links`). Both assert
that no answer is a server error.

:func:`fuzz_settings` is also the setting of the property tests (filter parsers, CSV readers).
``make test`` runs everything derandomized with few examples, so CI meets the same cases every
time; ``make soak`` sets ``ROLLCALL_SOAK_SCALE`` (that many times more examples) and
``ROLLCALL_FUZZ_SEED=fresh`` (a new random seed each run; on a failure Hypothesis prints the
falsifying case and a ``@reproduce_failure`` blob).
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

Headers = Callable[[Any], dict[str, str]]


def fuzz_settings(examples: int) -> settings:
    """Derandomized ``examples`` examples, or the soak's scale and seed from the environment."""
    wanted = os.environ.get("ROLLCALL_FUZZ_SEED", "")
    return settings(
        max_examples=examples * int(os.environ.get("ROLLCALL_SOAK_SCALE") or 1),
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=not wanted,
        print_blob=True,
    )


def no_server_error(response: Any, case: Any) -> None:
    """The one verdict: a specific answer, never a 5xx (``/Me`` documents its 501)."""
    documented = response.status_code == 501 and case.formatted_path.endswith("/Me")
    assert response.status_code < 500 or documented, (
        case.method,
        case.formatted_path,
        case.query,
        case.body if not isinstance(case.body, bytes) else case.body[:200],
        response.text[:300],
    )


def fuzz_operations(
    schema: Any,
    headers: Headers,
    *,
    examples: int = 8,
    verdict: Callable[[Any, Any], None] = no_server_error,
    **call: Any,
) -> int:
    """Call every operation of ``schema`` with generated values; returns how many were called.

    ``verdict(response, case)`` asserts what every answer must be (default: no 5xx).
    """
    checked = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @fuzz_settings(examples)
        def run(case: Any) -> None:
            verdict(case.call(headers=headers(case), **call), case)

        run()
        checked += 1
    return checked


def fuzz_links(app: Any, path: str, start: Callable[[], Headers], *, steps: int = 10) -> None:
    """Follow the Link Objects of the document at ``path`` (Schemathesis' stateful testing):
    each step may reuse an id a creation answered, so reads, changes and deletes meet real
    records.

    Every scenario calls ``start()`` first, which must put the database back in one known state
    and return the scenario's headers: Hypothesis replays scenarios and needs the same answers
    each time. Every 5xx is collected (with the server's traceback) and reported once the run is
    over, so a find is never hidden behind Hypothesis' replay of a changed database.
    """
    found: list[str] = []
    schema = schemathesis.openapi.from_asgi(path, _answering_500(app, found))
    schema.config.generation.update(modes=["positive"])  # valid bodies, so chains go deep

    class Machine(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            self.headers = start()

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": self.headers(case)}

        def validate_response(self, response: Any, case: Any, **_: Any) -> None:
            try:
                no_server_error(response, case)
            except AssertionError as error:
                found.append(f"{error}")

    options = fuzz_settings(steps)
    Machine.run(settings=settings(options, stateful_step_count=6, phases=[Phase.generate]))
    assert not found, "\n\n".join(found)


def _answering_500(app: Any, found: list[str]) -> Any:
    """``app`` as a server runs it: Starlette has already sent the 500 when an error escapes,
    and uvicorn logs it and carries on; here the traceback joins ``found``."""

    async def serve(scope: Any, receive: Any, send: Any) -> None:
        try:
            await app(scope, receive, send)
        except Exception:
            if scope["type"] != "http":
                raise
            found.append(traceback.format_exc(limit=-6))

    return serve
