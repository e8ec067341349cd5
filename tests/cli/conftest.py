"""The ``rollcall`` command line, run in-process against the test database."""

from __future__ import annotations

import pytest

from server.cli.main import main


@pytest.fixture
def rollcall(monkeypatch, tmp_path, database, database_url, capsys):
    monkeypatch.setenv("ROLLCALL_DATABASE_URL", database_url)
    monkeypatch.setenv("ROLLCALL_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("ROLLCALL_SECRET_KEY", raising=False)

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
