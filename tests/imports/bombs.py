"""Hostile files for the import-limit tests (issue 11), built in the test, never stored.

Each builder streams its content into the zip a chunk at a time, so building a 600 MB member
costs the test process no memory; deflate shrinks such uniform content to a few hundred KB.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

CHUNK = 1024 * 1024
MANIFEST_11 = (
    "propertyName,value\r\nmanifest.version,1.0\r\noneroster.version,1.1\r\nfile.users,bulk\r\n"
)
USERS_HEADER = (
    "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,"
    "givenName,familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,password\r\n"
)


def _stream(archive: zipfile.ZipFile, name: str, head: bytes, unit: bytes, size: int) -> None:
    """Write ``head`` then ``unit`` repeated up to ``size`` bytes into member ``name``."""
    block = unit * (CHUNK // len(unit))
    with archive.open(name, "w", force_zip64=True) as member:
        member.write(head)
        left = size
        while left > 0:
            member.write(block[:left])
            left -= len(block)


def comma_line_package(path: Path, size: int) -> Path:
    """A OneRoster 1.1 package whose users.csv is its header and one line of ``size`` commas.

    The shape of the reported bomb: a 615 KB zip, one 600 MB line (issue 11, defect 1).
    """
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("manifest.csv", MANIFEST_11)
        _stream(archive, "users.csv", USERS_HEADER.encode(), b",", size)
    return path


def zeros_package(path: Path, size: int) -> Path:
    """A OneRoster package whose users.csv is ``size`` zero bytes (a classic zip bomb)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("manifest.csv", MANIFEST_11)
        _stream(archive, "users.csv", b"", b"\0", size)
    return path


def many_files_package(path: Path, count: int) -> Path:
    """A OneRoster package with ``count`` tiny extra files beside a valid manifest."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.csv", MANIFEST_11)
        archive.writestr("users.csv", USERS_HEADER)
        for number in range(count):
            archive.writestr(f"extra/{number}.txt", b"")
    return path


SHEET_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    b'<sheetData><row r="1">'
)
SHEET_TAIL = b"</row></sheetData></worksheet>"
EMPTY_INLINE_CELL = b'<c t="inlineStr"><is><t></t></is></c>'
WORKBOOK_PARTS = {
    "[Content_Types].xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        "</Types>"
    ),
    "_rels/.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>'
    ),
    "xl/workbook.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
    ),
    "xl/_rels/workbook.xml.rels": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
    ),
}


def wide_row_workbook(path: Path, cells: int) -> Path:
    """An XLSX whose only sheet holds one row of ``cells`` empty inline-string cells.

    The shape of the reported bomb: 20 million such cells in a 2.1 MB file (issue 11).
    """
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, text in WORKBOOK_PARTS.items():
            archive.writestr(name, text)
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as member:
            member.write(SHEET_HEAD)
            block = EMPTY_INLINE_CELL * (CHUNK // len(EMPTY_INLINE_CELL))
            per_block = CHUNK // len(EMPTY_INLINE_CELL)
            left = cells
            while left > 0:
                member.write(block[: min(left, per_block) * len(EMPTY_INLINE_CELL)])
                left -= per_block
            member.write(SHEET_TAIL)
    return path


XF = b'<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'


def styles_workbook(path: Path, size: int) -> Path:
    """An XLSX whose styles.xml is ``size`` bytes of cell formats, which openpyxl reads whole
    (about 25 bytes of memory per byte of XML: the reason for the XLSX part limit)."""
    parts = dict(WORKBOOK_PARTS)
    parts["xl/_rels/workbook.xml.rels"] = parts["xl/_rels/workbook.xml.rels"].replace(
        "</Relationships>",
        '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/styles" Target="styles.xml"/></Relationships>',
    )
    count = size // len(XF)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, text in parts.items():
            archive.writestr(name, text)
        archive.writestr("xl/worksheets/sheet1.xml", SHEET_HEAD + b"<c><v>1</v></c>" + SHEET_TAIL)
        with archive.open("xl/styles.xml", "w") as member:
            member.write(
                b'<?xml version="1.0"?><styleSheet xmlns="http://schemas.openxmlformats.org/'
                b'spreadsheetml/2006/main"><cellXfs count="%d">' % count
            )
            for _ in range(count // 1000):
                member.write(XF * 1000)
            member.write(XF * (count % 1000) + b"</cellXfs></styleSheet>")
    return path


def lying_sizes(body: bytes, member: str, size: int) -> bytes:
    """``body`` (a zip) with ``member``'s uncompressed size rewritten to ``size`` in its local
    header and its central directory entry: a zip that lies about how much it holds, so the
    directory checks pass and only the reading can notice (APPNOTE.TXT §4.3.7, §4.3.12)."""
    data, name = bytearray(body), member.encode()
    for signature, size_at, name_length_at, name_at in (
        (b"PK\x03\x04", 22, 26, 30),  # local file header
        (b"PK\x01\x02", 24, 28, 46),  # central directory file header
    ):
        start = data.find(signature)
        while start != -1:
            length = int.from_bytes(
                data[start + name_length_at : start + name_length_at + 2], "little"
            )
            if data[start + name_at : start + name_at + length] == name:
                data[start + size_at : start + size_at + 4] = size.to_bytes(4, "little")
            start = data.find(signature, start + 4)
    return bytes(data)
