"""What a process loads before its first request (issue 15: ``rollcall serve --workers N``
starts every worker with a fresh interpreter, and every CLI command starts one too).

Counted, never timed: the modules a fresh interpreter holds after importing an entry point.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def modules_after(statement: str) -> set[str]:
    """The top-level packages in ``sys.modules`` after ``statement`` in a fresh interpreter."""
    script = f"{statement}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    return {name.split(".")[0] for name in json.loads(done.stdout.splitlines()[-1])}


@pytest.mark.parametrize("heavy", ["fpdf", "fontTools"])
def test_the_app_loads_the_pdf_library_only_for_a_pdf(heavy):
    # fpdf (with fontTools) was a sixth of every worker's start-up: only a credential sheet needs it
    assert heavy not in modules_after("import server.app")


@pytest.mark.parametrize("surface", ["scim", "scim2_models", "jinja2"])
def test_the_serve_command_leaves_the_app_to_the_processes_that_serve(surface):
    # with --workers N the parent migrates, seeds and supervises; each worker imports the app
    assert surface not in modules_after("import server.cli.main, server.cli.serve")
