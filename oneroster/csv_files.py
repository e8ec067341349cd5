"""OneRoster CSV 1.1 and 1.2 (1.2.1 corrections) packages: manifest, headers, rows.

A package is a zip (or a folder) holding ``manifest.csv`` and the rostering files. This module
reads it row by row (the csv module over a zip member stream, so memory does not grow with the
file) and writes one for exports. It checks only the *shape* of the package; what the values
mean is decided by the import engine in ``server/imports`` through the domain services.

The headers of each file, in spec order, are in :mod:`oneroster.csv_tables`; the writer is
:mod:`oneroster.csv_writer`.

Lenient reading (on by default) repairs known drift and reports each repair as a warning:
a header in another case or order, ``userProfile`` for ``userProfileSourcedId``, 1.2's
``resourceSourcedIds`` column in ``users.csv`` (dropped from 1.2.1), ``enabledUserV1P1``, and
1.2 files (``roles.csv``, a ``users.csv`` without ``role``) under a 1.1 manifest, or the
reverse.
"""

from __future__ import annotations

import csv
import hashlib
import io
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from oneroster.csv_tables import (
    COMMON,
    DROPPED_HEADERS,
    HEADER_ALIASES,
    HEADERS,
    KEY_COLUMNS,
    MANIFEST_VERSION,
    MODES,
    OTHER_FILES,
    iter_list,
    parse_boolean,
    role_sourced_id,
)
from oneroster.csv_writer import write_package
from server.domain.cells import restore
from server.domain.import_limits import (
    CountingReader,
    ImportLimits,
    PackageBudget,
    bounded_lines,
    check_archive,
    check_row,
    open_member,
)
from server.domain.import_records import FileProblem

__all__ = [
    "COMMON",
    "HEADERS",
    "KEY_COLUMNS",
    "MANIFEST_VERSION",
    "MODES",
    "OTHER_FILES",
    "Package",
    "PackageError",
    "SourceRow",
    "iter_list",
    "open_package",
    "parse_boolean",
    "role_sourced_id",
    "write_package",
]


class PackageError(FileProblem):
    """The package cannot be read: F001 unreadable, F002 headers, F003 manifest."""


class Cells(dict[str, str]):
    """A row's cells, stripped; a column the file lacks reads as empty."""

    def __missing__(self, key: str) -> str:
        return ""


class SourceRow:
    """One data row: its file, its line number (the header is line 1) and its cells.

    ``values`` are the cells as read; ``get(name)`` is one stripped, ``""`` when empty or
    absent (a plain dict lookup: a row's cells are read about fifty times while translated).
    """

    __slots__ = ("cells", "file", "get", "number", "values")

    def __init__(self, file: str, number: int, values: Mapping[str, str]) -> None:
        self.file = file
        self.number = number
        self.values = values
        self.cells = Cells(zip(values, map(str.strip, values.values()), strict=True))
        self.get: Callable[[str], str] = self.cells.__getitem__

    def __repr__(self) -> str:
        return f"SourceRow({self.file!r}, {self.number}, {dict(self.values)!r})"


@dataclass
class Package:
    """An opened OneRoster CSV package. Read files with :meth:`rows`; close when done."""

    version: str
    modes: dict[str, str]
    source_name: str | None
    warnings: list[tuple[str, str]] = field(default_factory=list)
    _zip: zipfile.ZipFile | None = None
    _folder: Path | None = None
    _names: dict[str, str] = field(default_factory=dict)
    limits: ImportLimits = field(default_factory=ImportLimits)
    _budget: PackageBudget | None = None
    _held: Path | None = None  # a local copy of each file read by :meth:`hold`

    def files(self) -> list[str]:
        """The rostering files present (mode bulk or delta), in the spec's order."""
        return [name for name in HEADERS[self.version] if self.modes.get(name) in ("bulk", "delta")]

    def mode(self, name: str) -> str:
        return self.modes.get(name, "absent")

    def headers(self, name: str) -> tuple[str, ...]:
        return HEADERS[self.version][name]

    def rows(self, name: str) -> Iterator[SourceRow]:
        """Stream the rows of ``name`` with canonical header names (see :meth:`lines`).

        An empty line (or one of empty cells) is yielded with no values, for the reader to
        report.
        """
        for columns, number, cells in self.lines(name):
            yield SourceRow(name, number, dict(zip(columns, cells, strict=True)) if cells else {})

    def lines(self, name: str) -> Iterator[tuple[tuple[str, ...], int, list[str]]]:
        """Stream the rows of ``name`` as ``(columns, number, cells)``: the header's columns
        kept (canonical names, file order; the same tuple for every row), the line number and
        the cells as read under those columns (short rows padded, extra cells dropped,
        neutralised formulas restored); an empty line (or one of empty cells) has no cells.
        No :class:`SourceRow` is built: a nightly sync hashes most rows straight from the
        list (issue 15). Lines, rows and cells are read within the package's
        :class:`ImportLimits`.

        :raises PackageError: F001 (encoding, broken CSV) or F002 (missing key columns).
        :raises LimitExceeded: F011-F017, as soon as the file passes a limit.
        """
        with self._open(name) as stream:
            reader = csv.reader(bounded_lines(stream, self.limits, name))
            try:
                header = next(reader, None)
                if header is None:
                    return
                check_row(header, 1, self.limits, name)
                every = self._canonical_headers(name, header)
                width = len(every)
                kept = tuple(i for i, c in enumerate(every) if c)
                columns = tuple(every[i] for i in kept)
                pick = None if len(kept) == width else kept  # None: no ignored column
                limits = self.limits
                empty: list[str] = []
                for number, cells in enumerate(reader, start=2):
                    check_row(cells, number, limits, name)
                    joined = "".join(cells)
                    if not joined.strip():
                        yield columns, number, empty
                        continue
                    if len(cells) < width:
                        cells += [""] * (width - len(cells))
                    elif len(cells) > width:
                        del cells[width:]  # extra cells dropped
                    if pick is not None:
                        cells = [cells[i] for i in pick]
                    if "'" in joined:  # a neutralised formula, maybe
                        cells = [restore(v) for v in cells]
                    yield columns, number, cells
            except (UnicodeDecodeError, csv.Error) as error:
                raise PackageError("F001", f"{name} cannot be read: {error}.", name) from None

    def keys(self, name: str) -> Iterator[tuple[int, str]]:
        """(row number, ``get("sourcedId")``) of each row :meth:`rows` yields, read by
        :meth:`lines` (limits, header, numbering, empty lines) without building the rows:
        what the report of a package known unchanged lists (issue 15)."""
        header: tuple[str, ...] = ()
        at = 0
        for columns, number, cells in self.lines(name):
            if columns is not header:  # the last one, as dict(zip()) keeps it
                header = columns
                at = max(i for i, column in enumerate(columns) if column == "sourcedId")
            yield number, cells[at].strip() if cells else ""

    def hold(self) -> dict[str, str]:
        """Read every rostering file once, through the limits, into a local copy that
        :meth:`rows` then reads, and return the SHA-256 of each file's bytes as read (an
        unchanged package is known before its rows are parsed: issue 15). Files are read
        in :meth:`files` order; a file that cannot be read stops it (:meth:`rows` meets the
        problem again where it did before, and files not held are read from the package).
        """
        digests: dict[str, str] = {}
        self._held = self._held or Path(tempfile.mkdtemp(prefix="rollcall-package-"))
        for name in self.files():
            digest, part = hashlib.sha256(), self._held / f"{name}.part"
            with self._open_raw(name) as raw, part.open("wb") as copy:
                while chunk := raw.read(256 * 1024):
                    digest.update(chunk)
                    copy.write(chunk)
            part.rename(self._held / name)  # only a whole file is read from the copy
            digests[name] = digest.hexdigest()
        return digests

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()
        if self._held is not None:
            shutil.rmtree(self._held, ignore_errors=True)

    def __enter__(self) -> Package:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self, name: str) -> IO[str]:
        held = self._held / name if self._held is not None else None
        if held is not None and held.is_file():
            return io.TextIOWrapper(held.open("rb"), encoding="utf-8-sig", newline="")
        return io.TextIOWrapper(self._open_raw(name), encoding="utf-8-sig", newline="")

    def _open_raw(self, name: str) -> IO[bytes]:
        actual = self._names.get(name)
        if actual is None:
            raise PackageError("F003", f"The manifest lists {name} but the package lacks it.", name)
        if self._budget is None:
            self._budget = PackageBudget(self.limits)
        if self._zip is not None:
            raw: IO[bytes] = open_member(self._zip, actual, self.limits, self._budget)
        else:
            assert self._folder is not None
            raw = self._open_in_folder(actual)
        return raw

    def _open_in_folder(self, actual: str) -> IO[bytes]:
        """A file of an unpacked package (a pull's snapshot), counted like a zip member."""
        assert self._folder is not None and self._budget is not None
        raw = (self._folder / actual).open("rb")
        reader = CountingReader(raw, actual, self.limits.file_bytes, self._budget)
        return io.BufferedReader(reader, buffer_size=64 * 1024)

    def _canonical_headers(self, name: str, header: list[str]) -> list[str]:
        expected = HEADERS[self.version][name]
        by_fold = {h.casefold(): h for h in expected}
        columns: list[str] = []
        for raw in header:
            text = raw.strip()
            if text in expected:
                columns.append(text)
                continue
            if text.startswith("metadata."):
                columns.append(text)
                continue
            if text in DROPPED_HEADERS:
                self.warn(name, f"column {text!r} is not part of OneRoster {self.version}: ignored")
                columns.append("")
                continue
            alias = HEADER_ALIASES.get(text)
            if alias in expected:
                self.warn(name, f"column {text!r} read as {alias!r}")
                columns.append(alias)
                continue
            if text.casefold() in by_fold:
                self.warn(name, f"column {text!r} read as {by_fold[text.casefold()]!r}")
                columns.append(by_fold[text.casefold()])
                continue
            self.warn(name, f"unknown column {text!r} ignored")
            columns.append("")
        missing_keys = [c for c in KEY_COLUMNS[name] if c not in columns]
        if missing_keys:
            raise PackageError(
                "F002",
                f"{name} lacks the column {missing_keys[0]!r} "
                f"(OneRoster {self.version} header: {','.join(expected)}).",
                name,
            )
        absent = [c for c in expected if c not in columns]
        if absent:
            self.warn(name, f"columns missing, read as empty: {', '.join(absent)}")
        elif [c for c in columns if c in expected] != list(expected):
            self.warn(name, "columns are not in the spec's order")
        return columns

    def warn(self, file: str, message: str) -> None:
        self.warnings.append((file, message))


def open_package(
    source: str | Path | IO[bytes], *, lenient: bool = True, limits: ImportLimits | None = None
) -> Package:
    """Open a zip (path or binary file) or an unpacked folder and read its manifest.

    :raises PackageError: F001 not a zip, F003 manifest missing or inconsistent.
    :raises LimitExceeded: the zip's directory breaks a limit (F011-F014).
    """
    limits = limits or ImportLimits()
    names: dict[str, str] = {}
    archive: zipfile.ZipFile | None = None
    folder: Path | None = None
    if isinstance(source, str | Path) and Path(source).is_dir():
        folder = Path(source)
        for path in folder.iterdir():
            names[path.name] = path.name
    else:
        try:
            archive = zipfile.ZipFile(source)
        except (zipfile.BadZipFile, OSError, ValueError) as error:
            raise PackageError(
                "F001", f"The file is not a readable zip package: {error}."
            ) from None
        try:
            check_archive(archive, limits)
        except FileProblem:
            archive.close()
            raise
        for info in archive.infolist():
            if not info.is_dir():
                # Packages zipped with their folder: files one level down are accepted too.
                names.setdefault(info.filename.rsplit("/", 1)[-1], info.filename)
    package = Package(version="1.1", modes={}, source_name=None, _zip=archive, _folder=folder)
    package._names = names
    package.limits = limits
    try:
        _read_manifest(package, lenient=lenient)
    except FileProblem:
        package.close()
        raise
    return package


def _read_manifest(package: Package, *, lenient: bool) -> None:
    if "manifest.csv" not in package._names:
        raise PackageError("F003", "The package has no manifest.csv.", "manifest.csv")
    properties: dict[str, str] = {}
    with package._open("manifest.csv") as stream:
        try:
            reader = csv.reader(bounded_lines(stream, package.limits, "manifest.csv"))
            header = [h.strip() for h in next(reader, [])]
            if header[:2] != ["propertyName", "value"]:
                raise PackageError(
                    "F003",
                    "manifest.csv must start with the header propertyName,value.",
                    "manifest.csv",
                )
            for number, cells in enumerate(reader, start=2):
                check_row(cells, number, package.limits, "manifest.csv")
                if len(cells) >= 2 and cells[0].strip():
                    properties[cells[0].strip()] = cells[1].strip()
        except (UnicodeDecodeError, csv.Error) as error:
            raise PackageError("F001", f"manifest.csv cannot be read: {error}.") from None
    version = properties.get("oneroster.version", "")
    if version.startswith("1.2"):
        version = "1.2"
    if version not in HEADERS:
        raise PackageError(
            "F003",
            f"manifest.csv: oneroster.version must be 1.1 or 1.2, not {version or 'missing'!r}.",
            "manifest.csv",
        )
    if properties.get("manifest.version", MANIFEST_VERSION) != MANIFEST_VERSION:
        package.warn("manifest.csv", "manifest.version is not 1.0")
    package.version = version
    package.source_name = properties.get("source.systemName") or properties.get("source.appName")
    known = set(HEADERS["1.1"]) | set(HEADERS["1.2"]) | set(OTHER_FILES)
    for name in sorted(known):
        mode = properties.get(f"file.{name[:-4]}", "absent") or "absent"
        if mode not in MODES:
            raise PackageError(
                "F003",
                f"manifest.csv: file.{name[:-4]} must be absent, bulk or delta, not {mode!r}.",
                "manifest.csv",
            )
        present = name in package._names
        if mode != "absent" and not present:
            raise PackageError(
                "F003", f"manifest.csv lists {name} as {mode} but the package lacks it.", name
            )
        if mode == "absent" and present and name not in OTHER_FILES:
            if not lenient:
                raise PackageError(
                    "F003", f"{name} is in the package but the manifest says absent.", name
                )
            package.warn(name, "in the package but marked absent in the manifest: ignored")
        package.modes[name] = mode
    _repair_version(package, lenient=lenient)


def _repair_version(package: Package, *, lenient: bool) -> None:
    """Detect 1.2 files under a 1.1 manifest (or the reverse) from users.csv's header."""
    if package.mode("users.csv") == "absent" and package.mode("roles.csv") == "absent":
        return
    looks = package.version
    if package.mode("roles.csv") != "absent":
        looks = "1.2"
    elif package.mode("users.csv") != "absent":
        with package._open("users.csv") as stream:
            try:
                lines = bounded_lines(stream, package.limits, "users.csv")
                header = {h.strip() for h in next(csv.reader(lines), [])}
            except (UnicodeDecodeError, csv.Error):
                return
        if "role" in header or "orgSourcedIds" in header:
            looks = "1.1"
        elif "primaryOrgSourcedId" in header or "preferredGivenName" in header:
            looks = "1.2"
    if looks == package.version:
        return
    if not lenient:
        raise PackageError(
            "F003",
            f"The manifest says OneRoster {package.version} but the files are {looks}.",
            "manifest.csv",
        )
    package.warn(
        "manifest.csv",
        f"oneroster.version is {package.version} but the files are OneRoster {looks}: "
        f"read as {looks}",
    )
    package.version = looks
