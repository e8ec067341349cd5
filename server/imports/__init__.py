"""Roster imports and exports (SPEC §5, §10): OneRoster CSV packages and the school CSV.

The package reads files, diffs them against what is stored and asks the domain to write:
:mod:`server.imports.formats` picks the reader (:mod:`server.imports.oneroster_csv`,
:mod:`server.imports.school_csv`), which speaks the contract of :mod:`server.imports.contract`;
:mod:`server.imports.engine` runs an import (the file read ahead, then a trial run or an
apply in one short write transaction); the domain keeps its report
(:mod:`server.domain.import_runs`) and the row hashes that let unchanged rows be skipped
(:mod:`server.domain.sync_hashes`); :mod:`server.imports.exports` writes files back. The HTTP
endpoints live in :mod:`server.web.imports_api`.
"""
