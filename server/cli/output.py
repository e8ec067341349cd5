"""Printing results: rich tables on a terminal, one JSON document with ``--json``."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table


class Output:
    """Where a command's result goes. Errors always go to stderr."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.console = Console(highlight=False, soft_wrap=True)
        self.errors = Console(stderr=True, highlight=False, soft_wrap=True)

    def result(self, data: Any, message: str | None = None) -> None:
        """Print ``data`` as JSON, or ``message`` (default: a key/value listing) for people."""
        if self.as_json:
            sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
        elif message is not None:
            self.console.print(message)
        else:
            for key, value in data.items():
                self.console.print(f"[bold]{key}[/bold]: {value}")

    def table(self, rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str) -> None:
        if self.as_json:
            sys.stdout.write(json.dumps(list(rows), indent=2, default=str) + "\n")
            return
        if not rows:
            self.console.print(f"No {title.lower()}.")
            return
        table = Table(title=title)
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
        self.console.print(table)

    def error(self, message: str, code: str | None = None) -> None:
        if self.as_json:
            sys.stdout.write(json.dumps({"error": message, "code": code}) + "\n")
        self.errors.print(f"[bold red]error:[/bold red] {message}")
