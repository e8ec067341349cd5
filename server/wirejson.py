"""JSON from the wire: any body a client sends either parses or raises ``ValueError``.

Texts that ``json.loads`` accepts but no handler should meet are refused here, once for
every surface that reads a JSON body (admin API, OneRoster pushes, the staff import form,
the refused-request recorder):

- nesting deeper than :data:`MAX_DEPTH`: a few thousand levels (``[[[[…]]]]``) make
  ``json.loads`` raise ``RecursionError`` instead of ``ValueError``, and a few hundred make
  any recursive walk of the result (text checks, redaction, schema validation) do so later;
- escapes of lone surrogates (``"\\ud800"``): RFC 8259 §8.2 leaves their meaning open, they
  are not Unicode text, and no database stores them.

>>> loads('{"given_name": "Ann"}')
{'given_name': 'Ann'}
>>> loads('"\\\\ud800"')
Traceback (most recent call last):
ValueError: The JSON holds a lone surrogate escape (such as \\ud800), which is not text.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64  # the deepest real body (a SCIM PATCH of an extension's sub-attribute) is ~6


def loads(text: str | bytes) -> Any:
    """Parse ``text`` as JSON.

    :raises ValueError: not JSON, nested deeper than :data:`MAX_DEPTH`, or holding a lone
        surrogate.
    """
    try:
        data = json.loads(text)
    except RecursionError:
        raise ValueError(f"The JSON is nested deeper than {MAX_DEPTH} levels.") from None
    _check(data)
    return data


def _check(data: Any) -> None:
    """Walk ``data`` without recursion (a deep value must not exhaust the stack here)."""
    pending = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            _check_text(value)
            continue
        if not isinstance(value, dict | list):
            continue
        if depth > MAX_DEPTH:
            raise ValueError(f"The JSON is nested deeper than {MAX_DEPTH} levels.")
        if isinstance(value, dict):
            for key, item in value.items():
                _check_text(key)
                pending.append((item, depth + 1))
        else:
            pending.extend((item, depth + 1) for item in value)


def _check_text(value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            "The JSON holds a lone surrogate escape (such as \\ud800), which is not text."
        ) from None
