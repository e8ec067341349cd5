"""Limits on what an import may read (issue 11: import bombs), checked while streaming.

Every import path (``POST /oneroster/csv``, ``POST /admin/api/imports``, the staff upload
page, ``rollcall import``, pulls) reads through these checks, so a hostile file is refused
with an F-code naming the limit before it can grow the process:

- the zip's central directory is checked before any member is opened (count of files,
  declared sizes, compression ratio); members are then read through :class:`CountingReader`,
  which stops at the same limits however the headers lie;
- text is read a bounded line at a time (:func:`bounded_lines`), rows are counted and their
  cells too (:func:`check_row`), so a line of 600 MB of commas never becomes one string;
- an XLSX worksheet is scanned with a streaming, defused XML parser (:func:`scan_sheet`)
  before openpyxl reads it, so a row of 20 million empty cells is refused after 16,385.

Defaults suit a district of 100,000 students; each is set by an environment variable
(``ROLLCALL_IMPORT_MAX_*``, see :data:`ENVIRONMENT`).

Example::

    limits = ImportLimits(line_chars=1000)
    list(bounded_lines(io.StringIO("a,b\\n" + "x" * 5000), limits, "users.csv"))
    # raises LimitExceeded: F015 users.csv: a line is longer than 1000 characters ...
"""

from __future__ import annotations

import io
import lzma
import zipfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import IO, Any
from xml.sax.handler import ContentHandler

from defusedxml import expatreader

from server.domain.import_records import FileProblem

MIB = 1024 * 1024


@dataclass(frozen=True)
class ImportLimits:
    """The most an import reads. Sizes are bytes (decompressed unless said otherwise)."""

    upload_bytes: int = 256 * MIB  # a request body or the file given to ``rollcall import``
    total_bytes: int = 1024 * MIB  # all files of a zip (or XLSX) together
    file_bytes: int = 512 * MIB  # one file of a zip
    files: int = 100  # files in a zip
    ratio: int = 200  # decompressed / compressed size of one file of a zip
    line_chars: int = 1 * MIB  # one line of a CSV
    cells: int = 16_384  # cells in one row (Excel's widest sheet)
    rows: int = 2_000_000  # rows in one CSV file or worksheet
    # an XLSX part openpyxl reads whole: 1 MiB of styles.xml costs it about 25 MiB of memory
    xlsx_part_bytes: int = 2 * MIB
    page_bytes: int = 8 * MIB  # one page of a pulled upstream's JSON, parsed whole


# field -> (environment variable, F-code, what the code means)
ENVIRONMENT: dict[str, tuple[str, str, str]] = {
    "upload_bytes": (
        "ROLLCALL_IMPORT_MAX_UPLOAD_BYTES",
        "F010",
        "upload larger than the limit (request body or file)",
    ),
    "total_bytes": (
        "ROLLCALL_IMPORT_MAX_TOTAL_BYTES",
        "F011",
        "the files of a zip or XLSX together are larger than the limit once decompressed",
    ),
    "file_bytes": (
        "ROLLCALL_IMPORT_MAX_FILE_BYTES",
        "F012",
        "one file of a zip (or an XLSX part read whole) is larger than the limit once decompressed",
    ),
    "files": ("ROLLCALL_IMPORT_MAX_FILES", "F013", "a zip holds more files than the limit"),
    "ratio": (
        "ROLLCALL_IMPORT_MAX_RATIO",
        "F014",
        "a file of a zip is compressed more than the limit allows (a zip bomb)",
    ),
    "line_chars": ("ROLLCALL_IMPORT_MAX_LINE_CHARS", "F015", "a line longer than the limit"),
    "cells": ("ROLLCALL_IMPORT_MAX_CELLS", "F016", "a row with more cells than the limit"),
    "rows": (
        "ROLLCALL_IMPORT_MAX_ROWS",
        "F017",
        "a file or worksheet with more rows than the limit",
    ),
    "xlsx_part_bytes": (
        "ROLLCALL_IMPORT_MAX_XLSX_PART_BYTES",
        "F012",
        "an XLSX part read whole (shared strings, styles) is larger than the limit",
    ),
    "page_bytes": (
        "ROLLCALL_IMPORT_MAX_PAGE_BYTES",
        "F018",
        "a page of a pulled upstream's answer is larger than the limit",
    ),
}


def limits_from_env(env: Mapping[str, str]) -> ImportLimits:
    """The limits, each overridden by its ``ROLLCALL_IMPORT_MAX_*`` variable when set.

    >>> limits_from_env({"ROLLCALL_IMPORT_MAX_FILES": "5"}).files
    5
    """
    values: dict[str, int] = {}
    for item in fields(ImportLimits):
        text = env.get(ENVIRONMENT[item.name][0])
        if text:
            values[item.name] = int(text)
    return ImportLimits(**values)


class LimitExceeded(FileProblem):
    """A file breaks one of the :class:`ImportLimits`; its code names the limit."""

    def __init__(self, limit: str, message: str, file: str | None = None) -> None:
        self.limit = limit
        super().__init__(ENVIRONMENT[limit][1], message, file)


def _exceeded(limit: str, what: str, value: int, file: str | None) -> LimitExceeded:
    variable = ENVIRONMENT[limit][0]
    where = f"{file}: " if file else ""
    return LimitExceeded(
        limit, f"{where}{what} is more than the limit of {value:,} (set by {variable}).", file
    )


def page_too_large(limits: ImportLimits, url: str) -> str:
    """The message of F018: a pulled page larger than ``page_bytes``."""
    return _exceeded("page_bytes", f"the answer of {url}", limits.page_bytes, None).message


def upload_too_large(limits: ImportLimits, file: str | None = None) -> LimitExceeded:
    """F010: the upload (request body or file) is larger than ``upload_bytes``."""
    return _exceeded("upload_bytes", "the upload's size", limits.upload_bytes, file)


class PackageBudget:
    """What all files of one zip may still decompress to, shared by their readers."""

    def __init__(self, limits: ImportLimits) -> None:
        self.limits = limits
        self.left = limits.total_bytes

    def take(self, count: int, file: str) -> None:
        self.left -= count
        if self.left < 0:
            raise _exceeded(
                "total_bytes", "the decompressed package", self.limits.total_bytes, file
            )


def check_archive(archive: zipfile.ZipFile, limits: ImportLimits, *, xlsx: bool = False) -> None:
    """Refuse a zip from its central directory, before anything is decompressed.

    :raises LimitExceeded: F013 too many files, F012 a file too large, F011 all too large,
        F014 a file compressed more than ``ratio``.
    """
    members = [info for info in archive.infolist() if not info.is_dir()]
    if len(members) > limits.files:
        raise _exceeded("files", f"the zip holds {len(members):,} files, which", limits.files, None)
    total = 0
    for info in members:
        check_member(info, limits, xlsx=xlsx)
        total += info.file_size
        if total > limits.total_bytes:
            raise _exceeded(
                "total_bytes", "the decompressed package", limits.total_bytes, info.filename
            )


def check_member(info: zipfile.ZipInfo, limits: ImportLimits, *, xlsx: bool = False) -> None:
    """The declared size and compression ratio of one file of a zip."""
    limit = "file_bytes"
    if xlsx and not info.filename.startswith("xl/worksheets/"):
        limit = "xlsx_part_bytes"
    if info.file_size > MIB and info.file_size > limits.ratio * max(info.compress_size, 1):
        raise _exceeded(
            "ratio",
            f"the compression ratio ({info.file_size // max(info.compress_size, 1):,} to 1)",
            limits.ratio,
            info.filename,
        )
    maximum = getattr(limits, limit)
    if info.file_size > maximum:
        raise _exceeded(limit, "the decompressed file", maximum, info.filename)


# What reading a zip member raises when its bytes do not match its headers: a CRC that fails
# (more or other data than declared), a compressed stream corrupt or cut short.
DAMAGED = (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, OSError)


class CountingReader(io.RawIOBase):
    """A zip member read through the limits: stops at ``file_bytes`` and the package budget.

    zipfile already stops at the size a member declares; this holds even when a reader is
    handed a stream whose headers lie, and charges every byte to the package's budget.
    """

    def __init__(self, raw: IO[bytes], name: str, maximum: int, budget: PackageBudget) -> None:
        self.raw = raw
        self.name = name
        self.maximum = maximum
        self.budget = budget
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self.raw.read(len(buffer))
        except DAMAGED as error:
            raise FileProblem("F001", f"{self.name} is damaged: {error}.", self.name) from None
        self.count += len(data)
        if self.count > self.maximum:
            raise _exceeded("file_bytes", "the decompressed file", self.maximum, self.name)
        self.budget.take(len(data), self.name)
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.raw.close()
        super().close()


def open_member(
    archive: zipfile.ZipFile, member: str, limits: ImportLimits, budget: PackageBudget
) -> IO[bytes]:
    """Open one file of a zip for reading through the limits (buffered binary stream)."""
    info = archive.getinfo(member)
    check_member(info, limits)
    reader = CountingReader(archive.open(info), member, limits.file_bytes, budget)
    return io.BufferedReader(reader, buffer_size=64 * 1024)


def bounded_lines(stream: IO[str], limits: ImportLimits, file: str) -> Iterator[str]:
    """The lines of a text stream, each at most ``line_chars`` long (line break included).

    :raises LimitExceeded: F015 as soon as a line passes the limit (nothing more is read).
    """
    while line := stream.readline(limits.line_chars + 1):
        if len(line) > limits.line_chars:
            raise _exceeded("line_chars", "a line's length", limits.line_chars, file)
        yield line


def check_row(cells: list[Any], number: int, limits: ImportLimits, file: str) -> None:
    """One row of a file: its cells and its number against ``cells`` and ``rows``.

    :raises LimitExceeded: F016 too many cells, F017 too many rows.
    """
    if len(cells) > limits.cells:
        raise _exceeded(
            "cells", f"row {number} has {len(cells):,} cells, which", limits.cells, file
        )
    if number > limits.rows + 1:  # the header is row 1
        raise _exceeded("rows", "the number of rows", limits.rows, file)


def limit_codes() -> dict[str, str]:
    """The F-codes of the limits and what each means (for the served list of status codes)."""
    codes: dict[str, str] = {}
    for _, code, meaning in ENVIRONMENT.values():
        codes.setdefault(code, meaning)
    return codes


class _SheetCounter(ContentHandler):
    """SAX handler counting a worksheet's rows and the cells of each row."""

    def __init__(self, limits: ImportLimits, file: str) -> None:
        super().__init__()
        self.limits = limits
        self.file = file
        self.rows = 0
        self.cells = 0

    def startElement(self, name: str, attrs: Any) -> None:
        local = name.rsplit(":", 1)[-1]
        if local == "row":
            self.rows += 1
            self.cells = 0
            number = attrs.get("r")
            index = int(number) if number and number.isdigit() else self.rows
            if max(index, self.rows) > self.limits.rows + 1:
                raise _exceeded("rows", "the number of rows", self.limits.rows, self.file)
        elif local == "c":
            self.cells += 1
            if self.cells > self.limits.cells:
                raise _exceeded(
                    "cells", f"row {self.rows} has more cells, which", self.limits.cells, self.file
                )


def scan_workbook(source: Any, limits: ImportLimits) -> None:
    """Check an XLSX before openpyxl reads it: the zip, then every worksheet, streamed.

    The XML goes through defusedxml's expat reader (no entities, no external references), a
    chunk at a time, so memory stays flat whatever the sheet holds.

    :raises LimitExceeded: any zip limit, F016 a row with too many cells, F017 too many rows.
    :raises zipfile.BadZipFile: not a zip (the caller reports F001).
    """
    with zipfile.ZipFile(source) as archive:
        check_archive(archive, limits, xlsx=True)
        budget = PackageBudget(limits)
        for name in archive.namelist():
            if name.startswith("xl/worksheets/") and name.endswith(".xml"):
                with open_member(archive, name, limits, budget) as stream:
                    _scan_sheet(stream, limits, name)
    if hasattr(source, "seek"):
        source.seek(0)


def _scan_sheet(stream: IO[bytes], limits: ImportLimits, name: str) -> None:
    parser = expatreader.create_parser()
    parser.setContentHandler(_SheetCounter(limits, name))
    while chunk := stream.read(256 * 1024):
        parser.feed(chunk)
    parser.close()
