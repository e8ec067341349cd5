"""Which reader opens a file: a OneRoster zip or folder, a school CSV or an XLSX workbook."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO

from server.domain.import_limits import ImportLimits, upload_too_large
from server.domain.import_records import FileProblem
from server.imports.contract import Deactivation, ImportContext, ImportOptions, Progress, Step
from server.imports.oneroster_csv import OneRosterSource, looks_like_zip
from server.imports.school_csv import SchoolCsvSource


def open_source(
    path: str | Path | IO[bytes],
    *,
    filename: str | None = None,
    lenient: bool = True,
    limits: ImportLimits | None = None,
) -> OneRosterSource | SchoolCsvSource | RefusedSource:
    """The right reader for a file: a OneRoster zip or folder, a school CSV or XLSX.

    Every reader reads within ``limits``; a file on disk larger than ``upload_bytes`` gives a
    source that fails with F010 when run.
    """
    limits = limits or ImportLimits()
    name = (filename or (str(path) if isinstance(path, str | Path) else "")).lower()
    if isinstance(path, str | Path) and Path(path).is_dir():
        return OneRosterSource(path, lenient=lenient, limits=limits)
    if isinstance(path, str | Path) and Path(path).stat().st_size > limits.upload_bytes:
        return RefusedSource(upload_too_large(limits, Path(path).name))
    if name.endswith(".xlsx"):
        return SchoolCsvSource(path, spreadsheet=True, limits=limits)
    if name.endswith(".zip") or looks_like_zip(path):
        return OneRosterSource(path, lenient=lenient, limits=limits)
    return SchoolCsvSource(path, limits=limits)


class RefusedSource:
    """A file refused before it was opened (larger than the upload limit): fails when run."""

    format = "unknown"
    source_name = None

    def __init__(self, problem: FileProblem) -> None:
        self.problem = problem
        self.warnings: list[tuple[str, str]] = []

    def default_mode(self) -> str:
        return "delta"

    def read_ahead(
        self,
        options: ImportOptions,
        check: Progress | None = None,
        snapshot: ImportContext | None = None,
    ) -> None:
        pass

    def steps(self, ctx: ImportContext) -> Iterator[Step]:
        raise self.problem

    def deactivations(self, ctx: ImportContext) -> Iterator[Deactivation]:
        return iter(())

    def close(self) -> None:
        pass
