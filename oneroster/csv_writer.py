"""Write a OneRoster CSV bulk package (exports): manifest and files, each text cell neutralised
against formula injection (:mod:`server.domain.cells`)."""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

from oneroster.csv_tables import HEADERS, MANIFEST_VERSION, OTHER_FILES
from server.domain.cells import neutralise


def write_package(
    target: str | Path | IO[bytes],
    version: str,
    files: Mapping[str, Iterable[Mapping[str, Any]]],
    *,
    source_name: str = "Rollcall",
) -> None:
    """Write a bulk package: ``files`` maps a file name to its rows (dicts keyed by header).

    Rows are streamed into the zip; values are written as given (None as empty), each text
    cell neutralised against formula injection (:mod:`server.domain.cells`; read back by
    :meth:`Package.rows`).
    """
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        manifest = io.StringIO()
        writer = csv.writer(manifest, lineterminator="\r\n")
        writer.writerow(["propertyName", "value"])
        writer.writerow(["manifest.version", MANIFEST_VERSION])
        writer.writerow(["oneroster.version", version])
        for name in sorted(set(HEADERS[version]) | set(OTHER_FILES)):
            writer.writerow([f"file.{name[:-4]}", "bulk" if name in files else "absent"])
        writer.writerow(["source.systemName", source_name])
        writer.writerow(["source.systemCode", ""])
        archive.writestr("manifest.csv", manifest.getvalue())
        for name, rows in files.items():
            headers = HEADERS[version][name]
            with archive.open(name, "w") as raw:
                stream = codecs.getwriter("utf-8")(raw)
                out = csv.writer(stream, lineterminator="\r\n")
                out.writerow(headers)
                for row in rows:
                    out.writerow(
                        ["" if row.get(h) is None else neutralise(row.get(h)) for h in headers]
                    )
