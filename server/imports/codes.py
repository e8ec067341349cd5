"""The import status codes (SPEC §10), served at ``GET /admin/import/codes.json``.

Each row of a trial run or import report carries one of these codes; the README's table is
the same list. The F-codes of the import limits come from :mod:`server.domain.import_limits`.
"""

from __future__ import annotations

from server.domain.import_limits import limit_codes
from server.domain.import_records import EMPTY_LINE

STATUS_CODES: dict[str, str] = {
    "F001": "file unreadable (encoding, not CSV / not a zip)",
    "F002": "required column missing or a header renamed",
    "F003": "OneRoster manifest missing or inconsistent with the files",
    "F004": "a pull's upstream cannot be read (unreachable, credentials refused, not OneRoster)",
    **limit_codes(),
    "R101": "required field empty",
    "R102": "invalid value (enumeration, date, boolean, grade, sourcedId)",
    "R103": "duplicate key inside the file",
    "R104": "username already used by another account",
    "R105": "username breaks the policy",
    "R106": "password breaks the policy",
    "R107": "SSO-linked account: username or password cannot be changed here",
    "R108": "reference to a record that does not exist (class, school, user)",
    "R109": "record owned by another connection",
    "W201": "will be deactivated: missing from a full import",
    "W202": "matches an inactive account, which will be reactivated",
    "W203": "value repaired by lenient reading (from → to); refused with --strict",
    "W204": "created, but an active student with the same name is already at the school",
    "W205": "username belongs to a different person (another name): row skipped, not a rename",
    EMPTY_LINE: "empty line: skipped",
}
