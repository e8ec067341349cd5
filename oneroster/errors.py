"""OneRoster status reports (1.1 and 1.2 REST binding, Appendix B "imsx_StatusInfo").

Every failed request answers with the status object at the root of the body::

    {"imsx_codeMajor": "failure", "imsx_severity": "error",
     "imsx_description": "No user with sourcedId 'u-9'.",
     "imsx_CodeMinor": {"imsx_codeMinorField": [
         {"imsx_codeMinorFieldName": "TargetEndSystem",
          "imsx_codeMinorFieldValue": "unknownobject"}]}}

Domain errors are mapped to these once, in :func:`from_domain_error`.
"""

from __future__ import annotations

from typing import Any

from server.errors import DomainError

UNKNOWN_OBJECT = "unknownobject"
INVALID_FILTER_FIELD = "invalid_filter_field"
INVALID_SELECTION_FIELD = "invalid_selection_field"
INVALID_DATA = "invaliddata"
UNAUTHORISED = "unauthorisedrequest"
FORBIDDEN = "forbidden"
SERVER_BUSY = "server_busy"
INTERNAL = "internal_server_error"


class StatusError(Exception):
    """A request that fails with an HTTP status and a OneRoster code minor."""

    def __init__(self, status: int, code_minor: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.code_minor = code_minor
        self.description = description


def not_found(description: str) -> StatusError:
    return StatusError(404, UNKNOWN_OBJECT, description)


def bad_filter(description: str) -> StatusError:
    return StatusError(400, INVALID_FILTER_FIELD, description)


def bad_selection(description: str) -> StatusError:
    return StatusError(400, INVALID_SELECTION_FIELD, description)


def status_info(code_minor: str, description: str) -> dict[str, Any]:
    """The ``imsx_StatusInfo`` object of a failed request."""
    return {
        "imsx_codeMajor": "failure",
        "imsx_severity": "error",
        "imsx_description": description,
        "imsx_CodeMinor": {
            "imsx_codeMinorField": [
                {
                    "imsx_codeMinorFieldName": "TargetEndSystem",
                    "imsx_codeMinorFieldValue": code_minor,
                }
            ]
        },
    }


def from_domain_error(error: DomainError) -> StatusError:
    """The OneRoster answer to a refused domain call (the import status code is kept in the
    description so a hub's engineer can look it up)."""
    prefix = f"{error.code}: " if error.code else ""
    description = prefix + error.message
    if error.status == 404:
        return StatusError(404, UNKNOWN_OBJECT, description)
    if error.status == 403:
        return StatusError(403, FORBIDDEN, description)
    if error.status in (409, 412):
        return StatusError(error.status, INVALID_DATA, description)
    return StatusError(422, INVALID_DATA, description)
