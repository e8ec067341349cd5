"""A live Rollcall on 127.0.0.1 and headless Debian Chromium driven by Playwright.

Chromium comes from the Debian package (/usr/bin/chromium); no browser is ever downloaded.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from dataclasses import replace

import pytest

from server.app import create_app
from tests.live import bound_socket, serving, url_of
from tests.web.conftest import district  # noqa: F401 - the small district the staff tests share

SCREENSHOTS = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "screenshots")
# axe-core 4.14.1 (MPL-2.0), vendored from the npm registry (``npm pack axe-core@4``).
AXE = os.path.join(os.path.dirname(__file__), "vendor", "axe.min.js")


@pytest.fixture
def live_server(settings, database) -> Iterator[str]:
    sock = bound_socket()
    # Like `rollcall serve` without ROLLCALL_ISSUER: the issuer is the address served.
    served = replace(settings, issuer=url_of(sock))
    with serving(create_app(served, database=database), sock) as base:
        yield base


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 860})
    page = context.new_page()
    yield page
    context.close()


def screenshot(page, name: str) -> None:
    """Save a screenshot of a main page. The README's copies in docs/screenshots/ are refreshed
    only on request (``ROLLCALL_SCREENSHOTS=1 make test``), so a test run leaves the tree clean."""
    folder = SCREENSHOTS if os.environ.get("ROLLCALL_SCREENSHOTS") else tempfile.gettempdir()
    os.makedirs(folder, exist_ok=True)
    page.screenshot(
        path=os.path.join(
            folder, f"rollcall-{name}.png" if folder != SCREENSHOTS else f"{name}.png"
        ),
        full_page=True,
    )


@pytest.fixture
def axe_page(browser):
    """A page that axe-core may be injected into: the app's CSP forbids injected scripts, as it
    should; the checker is let in here only."""
    context = browser.new_context(viewport={"width": 1200, "height": 860}, bypass_csp=True)
    yield context.new_page()
    context.close()


def axe_violations(page) -> list[str]:
    """axe-core's violations on the page as it is now, one line each (rule, help, targets)."""
    page.add_script_tag(path=AXE)
    found = page.evaluate("async () => (await axe.run(document)).violations")
    return [f"{v['id']}: {v['help']} — {[n['target'] for n in v['nodes']][:3]}" for v in found]
