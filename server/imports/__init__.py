"""Roster imports and exports (SPEC §5, §10): OneRoster CSV packages and the school CSV.

:mod:`server.imports.engine` runs an import (trial run or apply) through the domain services;
:mod:`server.imports.report` keeps its report; :mod:`server.imports.exports` writes files back.
"""
