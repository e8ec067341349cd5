"""What in a request is secret, decided by meaning (SPEC §8, issue 11 defect 5).

Key-name scrubbing (:mod:`server.logs`) catches ``"password": "…"``; it cannot know that
``/activate/Kq3…`` is a live credential or that ``{"op": "replace", "path": "password",
"value": "…"}`` carries one under the key ``value``. This module knows, from what the value
*is*:

- **secret path segments**: route parameters that are credentials (``SECRET_PATH_PARAMS``,
  e.g. the activation token in ``/activate/{token}``), replaced in logged and stored paths;
- **secret attributes**: fields the SCIM schemas declare ``returned: never`` (``password``),
  wherever they sit in a JSON body: as a key, or as the ``path`` of a PATCH operation whose
  ``value`` is then hidden.

>>> redact_path("/activate/Kq3xyz", {"token": "Kq3xyz"})
'/activate/[redacted]'
>>> redact_body('{"op":"replace","path":"password","value":"s3cret"}', {"password"})
'{"op": "replace", "path": "password", "value": "[redacted]"}'
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from typing import Any

from server import wirejson

REDACTED = "[redacted]"
# Route parameters that hold a credential: whoever reads the path could use it.
SECRET_PATH_PARAMS = frozenset({"token", "secret", "badge", "code"})
_ANY_STRING_VALUE = re.compile(r'("value"\s*:\s*)"(?:[^"\\]|\\.)*"?', re.I)


def redact_path(path: str, path_params: Mapping[str, Any] | None) -> str:
    """``path`` with the values of secret route parameters replaced."""
    for name, value in (path_params or {}).items():
        if name in SECRET_PATH_PARAMS and isinstance(value, str) and value:
            path = path.replace(value, REDACTED)
    return path


def redact_body(text: str, secret_attributes: Collection[str]) -> str:
    """A JSON request body with every secret attribute's value replaced.

    A body cut short (an excerpt) cannot be parsed: if it names a secret attribute at all,
    every ``"value"`` string in it is hidden, since one of them may be the secret.
    """
    secrets = {name.lower() for name in secret_attributes}
    try:
        data = wirejson.loads(text)
    except ValueError:
        if any(name in text.lower() for name in secrets):
            return _ANY_STRING_VALUE.sub(rf'\1"{REDACTED}"', text)
        return text
    return json.dumps(_redact(data, secrets), ensure_ascii=False)


def _redact(data: Any, secrets: set[str]) -> Any:
    if isinstance(data, list):
        return [_redact(item, secrets) for item in data]
    if not isinstance(data, dict):
        return data
    path = data.get("path")
    hide_value = isinstance(path, str) and _attribute(path) in secrets
    return {
        key: REDACTED
        if _attribute(str(key)) in secrets or (hide_value and str(key).lower() == "value")
        else _redact(value, secrets)
        for key, value in data.items()
    }


def _attribute(name: str) -> str:
    """``urn:…:User:password`` and ``password`` both name ``password``."""
    return name.rsplit(":", 1)[-1].lower()
