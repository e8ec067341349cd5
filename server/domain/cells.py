"""Spreadsheet formula injection: every text cell Rollcall exports is neutralised, and every
cell it imports is restored, so an export re-imported gives back the original values.

The rule is OWASP's (CSV Injection): a cell that begins with ``=``, ``+``, ``-``, ``@``, a tab
or a carriage return is read by Excel, LibreOffice and Google Sheets as a formula, so it is
written with a single quote in front (``=HYPERLINK(…)`` -> ``'=HYPERLINK(…)``), which makes it
text. So that the quote can be taken off again without ambiguity, a value that already
begins with quotes followed by one of those characters gets one more quote
(``'=x`` -> ``''=x``); reading takes exactly one off.

>>> neutralise("=1+2"), neutralise("-5"), neutralise("Ann"), neutralise("'=x")
("'=1+2", "'-5", 'Ann', "''=x")
>>> restore("'=1+2"), restore("''=x"), restore("'Ann")
('=1+2', "'=x", "'Ann")
"""

from __future__ import annotations

import re
from typing import Any

TRIGGERS = "=+-@\t\r"
_GUARDED = re.compile(r"'*[=+\-@\t\r]")
_NEUTRALISED = re.compile(r"'+[=+\-@\t\r]")


def neutralise(value: Any) -> Any:
    """The cell as it is written to a CSV or XLSX export (non-text values unchanged)."""
    if isinstance(value, str) and _GUARDED.match(value):
        return "'" + value
    return value


def restore(value: str) -> str:
    """The cell as it was before :func:`neutralise` (what an import reads)."""
    if value[:1] == "'" and _NEUTRALISED.match(value):
        return value[1:]
    return value
