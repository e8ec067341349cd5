"""Translate OneRoster CSV rows (1.1 and 1.2) into plain import records.

Only translation and the CSV binding's own rules: string booleans, list cells,
blank-means-absent, the required cells of each file and version (R101), GUID characters and
``dateLastModified`` (R102), and the lenient repairs of known drift (W203): the cell rules
are :mod:`oneroster.csv_cells`.
What the values mean (enumerations, grades, dates, references, ownership) is checked by the
import engine through the domain services, which report the SPEC §10 status codes.

The record fields use the domain's names; references keep the file's sourcedIds
(``school_key``, ``class_key``…) for the engine to resolve.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable
from operator import itemgetter
from typing import Any, NamedTuple

from oneroster.csv_cells import (
    DATE_TIME,
    RACE_COLUMNS,
    boolean,
    cell_plan,
    check_guids,
    check_modified,
    metadata_of,
    plan_of,
    repair,
    required,
    status_of,
)
from oneroster.csv_files import SourceRow, iter_list
from server.domain.import_records import ImportRecord, RowProblem, Source
from server.domain.vocabulary import (
    ENROLLMENT_ROLES_1P2,
)

# Required cells per file (OneRoster 1.1 CSV Tables §2; 1.2.1 CSV Tables §3, the same list
# LongsightGroup/oneroster's validator checks in src/one-roster-csv-rostering-record-engine.ts).
_REQUIRED_SHARED = {
    "orgs.csv": ("name", "type"),
    "academicSessions.csv": ("title", "type", "startDate", "endDate", "schoolYear"),
    "courses.csv": ("title", "orgSourcedId"),
    "classes.csv": ("title", "courseSourcedId", "classType", "schoolSourcedId", "termSourcedIds"),
    "enrollments.csv": ("classSourcedId", "schoolSourcedId", "userSourcedId", "role"),
    "demographics.csv": (),
}
REQUIRED: dict[str, dict[str, tuple[str, ...]]] = {
    "1.1": _REQUIRED_SHARED
    | {
        "users.csv": (
            "enabledUser",
            "orgSourcedIds",
            "role",
            "username",
            "givenName",
            "familyName",
        ),
    },
    "1.2": _REQUIRED_SHARED
    | {
        "users.csv": ("enabledUser", "username", "givenName", "familyName"),
        "roles.csv": ("userSourcedId", "roleType", "role", "orgSourcedId"),
        "userProfiles.csv": (
            "userSourcedId",
            "profileType",
            "vendorId",
            "credentialType",
            "username",
        ),
    },
}


def translate(
    row: SourceRow, version: str, *, mode: str = "bulk", lenient: bool = True
) -> ImportRecord:
    """The import record for one row of any rostering file.

    A row that deletes (``status=tobedeleted``) needs only its ``sourcedId``; any other row
    needs every required cell of its file and version (:data:`REQUIRED`). Known drift is
    repaired (see :func:`repair`) and listed in ``record.repairs`` (W203) unless
    ``lenient`` is off, when it is refused (R102).

    :raises RowProblem: R101 (required cell empty) or R102 (malformed boolean or status).
    """
    if row.get("dateLastModified"):
        check_modified(row)
    as_read = row
    row, repairs = repair(row, mode)
    if repairs and not lenient:
        raise RowProblem("R102", f"{repairs[0]} (refused: strict reading).")
    key = required(row, "sourcedId")
    status = status_of(row)
    if status != "tobedeleted":
        needed = REQUIRED[version][row.file]
        if not all(map(row.get, needed)):
            for column in needed:
                required(row, column)
    plan = cell_plan(row)
    check_guids(row, plan)
    record = ImportRecord(row.file, row.number, KINDS[row.file], key, status=status)
    record.repairs = repairs
    TRANSLATORS[row.file](row, record, version)
    metadata = metadata_of(row, plan) if plan.metadata else None
    if metadata:
        record.fields["extra"] = {**record.fields.get("extra", {}), **metadata}
    if row.file in REFERENCE_COLUMNS and status != "tobedeleted" and _hashable(record):
        record.source = _source(as_read, version, mode, lenient)
    return record


# What a row's import outcome depends on besides its own cells: the records its columns name
# (file -> (column, kind of record, list cell?)); the same references the translators read.
REFERENCE_COLUMNS: dict[str, tuple[tuple[str, str, bool], ...]] = {
    "orgs.csv": (("parentSourcedId", "org", False),),
    "academicSessions.csv": (("parentSourcedId", "academic_session", False),),
    "courses.csv": (
        ("orgSourcedId", "org", False),
        ("schoolYearSourcedId", "academic_session", False),
    ),
    "classes.csv": (
        ("schoolSourcedId", "org", False),
        ("courseSourcedId", "course", False),
        ("termSourcedIds", "academic_session", True),
    ),
    "users.csv": (("orgSourcedIds", "org", True), ("primaryOrgSourcedId", "org", False)),
    # a 1.2 role row is part of its user's row hash (its user is named by the cell)
    "roles.csv": (("orgSourcedId", "org", False),),
    "enrollments.csv": (
        ("userSourcedId", "user", False),
        ("classSourcedId", "class", False),
        ("schoolSourcedId", "org", False),
    ),
}
# Bump when translation changes: every stored row digest then counts as changed once
READER_VERSION = "1"


def _hashable(record: ImportRecord) -> bool:
    """A row that always applies (a password to check, a disabled user) has no source."""
    return not record.password and record.enabled is not False


def _source(as_read: SourceRow, version: str, mode: str, lenient: bool) -> Source | None:
    """The digest of the row's cells as read (header plan applied: canonical names, any
    order) with everything else its translation depends on, and the keys it names: what
    :func:`sight` gives (None for a cell holding the separator: the row's fields are then
    hashed instead)."""
    seen = sight(as_read, version, mode=mode, lenient=lenient)
    return seen.source if seen is not None else None


@functools.lru_cache(maxsize=64)
def _source_plan(
    file: str, columns: tuple[str, ...], version: str, mode: str, lenient: bool
) -> tuple[str, tuple[str, ...], tuple[tuple[str, str, bool], ...]]:
    """Per header: what a row's digest starts with (the reader version, file, OneRoster
    version, mode, strictness and the columns in name order), that order, and the file's
    reference columns the header has."""
    order = tuple(sorted(columns))
    context = "\x1e".join((READER_VERSION, file, version, mode, str(int(lenient)), *order))
    present = tuple(named for named in REFERENCE_COLUMNS[file] if named[0] in columns)
    return context + "\x1e\x1e", order, present


class Sight(NamedTuple):
    """A row that may be unchanged, read without translating it (see :func:`sight`)."""

    key: str
    source: Source
    columns: tuple[str, ...]  # the row's columns in name order
    line: str  # its cells as read, in that order, joined by \x1f
    refs: str  # the keys it names, joined by \x1f


def sight(
    row: SourceRow, version: str, *, mode: str = "bulk", lenient: bool = True
) -> Sight | None:
    """A row that may be unchanged, without translating it (issue 15); None when it cannot
    be (no key, a file without row hashes). Its ``source`` is what :func:`translate` puts in
    ``record.source``, for the caller to compare with the stored hash.

    The row is neither checked nor repaired: only a row that translated and applied with
    these very cells (and this reader, OneRoster version, mode and strictness) left a hash
    that can match; the caller repairs (:func:`repair`) the rows it reports unchanged, for
    their W203. Deletions, passwords and disabled users are never hashed, so never match."""
    if not row.values:
        return None
    sighter = sighter_of(row.file, tuple(row.values), version, mode, lenient)
    return sighter.sight(list(row.values.values())) if sighter is not None else None


def sighter_of(
    file: str, columns: tuple[str, ...], version: str, mode: str, lenient: bool
) -> Sighter | None:
    """The :class:`Sighter` of a file's header (its columns as :meth:`Package.lines` gives
    them); None when its rows are never sighted (a file without row hashes, no sourcedId
    column, a column named twice)."""
    if file not in REFERENCE_COLUMNS:
        return None
    return _sighter(file, columns, version, mode, lenient)


@functools.lru_cache(maxsize=64)
def _sighter(
    file: str, columns: tuple[str, ...], version: str, mode: str, lenient: bool
) -> Sighter | None:
    if "sourcedId" not in columns:
        return None
    if len(set(columns)) != len(columns):
        return None
    return Sighter(file, columns, mode, *_source_plan(file, columns, version, mode, lenient))


class Sighter:
    """:func:`sight` and :func:`repair`'s W203 texts for the rows of one header, straight
    from the csv module's list of cells (issue 15: a nightly sync finds most rows unchanged;
    no :class:`SourceRow` is built for them). Everything by position, worked out once."""

    def __init__(
        self,
        file: str,
        columns: tuple[str, ...],
        mode: str,
        context: str,
        order: tuple[str, ...],
        references: tuple[tuple[str, str, bool], ...],
    ) -> None:
        at = {column: i for i, column in enumerate(columns)}
        self.file, self.columns, self.mode, self.order = file, columns, mode, order
        self._key = at["sourcedId"]
        self._start = hashlib.sha256(context.encode())  # copied per row: hashed once
        ordered = [at[column] for column in order]
        self._in_order = itemgetter(*ordered) if len(ordered) > 1 else lambda c: (c[ordered[0]],)
        self._separators = len(ordered) - 1
        self._references = tuple((at[column], kind, many) for column, kind, many in references)
        plan = plan_of(file, columns)
        spelled = frozenset(("", "true", "false"))
        self._spelled = tuple((at[c], spelled) for c in plan.booleans) + tuple(
            (at[c], frozenset((*choices, ""))) for c, choices in plan.enumerations
        )
        self._lists = tuple(at[c] for c in plan.lists)
        self._status, self._modified = at.get("status"), at.get("dateLastModified")

    def sight(self, cells: list[str]) -> Sight | None:
        """:func:`sight` of a row whose cells (as read, in the header's order) are ``cells``."""
        key = cells[self._key].strip()
        if not key:
            return None
        line = "\x1f".join(self._in_order(cells))
        if line.count("\x1f") != self._separators:
            return None  # a cell holds the separator: keep it to translate
        hashed = self._start.copy()
        hashed.update(line.encode())
        named = []
        refs: list[str] = []
        for i, kind, many in self._references:
            cell = cells[i]
            if many:
                keys = tuple(iter_list(cell))
                refs += keys
            else:
                cell = cell.strip()
                keys = (cell,) if cell else ()
                if cell:
                    refs.append(cell)
            named.append((kind, keys))
        source = (hashed.hexdigest(), tuple(named))
        return Sight(key, source, self.order, line, "\x1f".join(refs))

    def repairs(self, number: int, cells: list[str]) -> list[str]:
        """:func:`repair`'s texts for the row (W203); the row is built only when a cell may
        need one (:meth:`_may_repair`)."""
        if not self._may_repair(cells):
            return []
        row = SourceRow(self.file, number, dict(zip(self.columns, cells, strict=True)))
        return repair(row, self.mode)[1]

    def _may_repair(self, cells: list[str]) -> bool:
        """True for every row :func:`repair` changes (and maybe a few more, then repaired
        for real): a boolean or enumeration not spelled as the spec does, a list cell with an
        empty item, a ``status`` or ``dateLastModified`` a bulk file should leave blank or a
        delta file needs."""
        for i, allowed in self._spelled:
            if cells[i].strip() not in allowed:
                return True
        for i in self._lists:
            text = cells[i]
            if "," in text and any(not item.strip() for item in text.split(",")):
                return True
        status = cells[self._status].strip() if self._status is not None else ""
        modified = cells[self._modified].strip() if self._modified is not None else ""
        if self.mode == "bulk":
            return bool(status or modified)
        return status not in ("active", "tobedeleted") or not DATE_TIME.fullmatch(modified)


def _org(row: SourceRow, record: ImportRecord, version: str) -> None:
    record.fields |= {
        "name": required(row, "name"),
        "type": required(row, "type"),
        "identifier": row.get("identifier") or None,
    }
    record.refs["parent_key"] = row.get("parentSourcedId") or None


def _session(row: SourceRow, record: ImportRecord, version: str) -> None:
    year = row.get("schoolYear")
    if year and not re.fullmatch(r"\d{4}", year):
        raise RowProblem("R102", f"schoolYear must be a year (YYYY), not {year!r}.", "schoolYear")
    record.fields |= {
        "title": required(row, "title"),
        "type": required(row, "type"),
        "start_date": required(row, "startDate"),
        "end_date": required(row, "endDate"),
        "school_year": row.get("schoolYear") or None,
    }
    record.refs["parent_key"] = row.get("parentSourcedId") or None


def _course(row: SourceRow, record: ImportRecord, version: str) -> None:
    record.fields |= {
        "title": required(row, "title"),
        "course_code": row.get("courseCode") or None,
        "grades": iter_list(row.get("grades")),
        "subjects": iter_list(row.get("subjects")),
    }
    codes = iter_list(row.get("subjectCodes"))
    if codes:
        record.fields["extra"] = {"subjectCodes": codes}
    record.refs["org_key"] = row.get("orgSourcedId") or None
    record.refs["school_year_key"] = row.get("schoolYearSourcedId") or None


def _class(row: SourceRow, record: ImportRecord, version: str) -> None:
    record.fields |= {
        "title": required(row, "title"),
        "class_code": row.get("classCode") or None,
        "class_type": row.get("classType") or "scheduled",
        "location": row.get("location") or None,
        "grades": iter_list(row.get("grades")),
        "subjects": iter_list(row.get("subjects")),
        "periods": iter_list(row.get("periods")),
    }
    codes = iter_list(row.get("subjectCodes"))
    if codes:
        record.fields["extra"] = {"subjectCodes": codes}
    record.refs["school_key"] = required(row, "schoolSourcedId")
    record.refs["course_key"] = row.get("courseSourcedId") or None
    record.refs["term_keys"] = iter_list(row.get("termSourcedIds"))


def _user(row: SourceRow, record: ImportRecord, version: str) -> None:
    given, family = row.get("givenName"), row.get("familyName")
    if not (given or family):
        raise RowProblem("R101", "givenName and familyName are empty.", "givenName")
    record.fields |= {
        "given_name": given,
        "family_name": family,
        "middle_name": row.get("middleName") or None,
        "identifier": row.get("identifier") or None,
        "email": row.get("email") or None,
        "grades": iter_list(row.get("grades")),
    }
    username = row.get("username")
    if username:
        record.fields["username"] = username
    extra: dict[str, Any] = {}
    for column in ("userIds", "agentSourcedIds"):
        items = iter_list(row.get(column))
        if items:
            extra[column] = items
    for column in ("sms", "phone", "userMasterIdentifier", "preferredMiddleName", "pronouns"):
        if row.get(column):
            extra[column] = row.get(column)
    if extra:
        record.fields["extra"] = extra
    if version == "1.1":
        role = required(row, "role")
        orgs = iter_list(row.get("orgSourcedIds"))
        if not orgs:
            raise RowProblem("R101", "orgSourcedIds is empty.", "orgSourcedIds")
        record.fields["primary_role"] = role
        record.refs["roles"] = [(org, role, "primary") for org in orgs]
    else:
        record.fields["preferred_given_name"] = row.get("preferredGivenName") or None
        record.fields["preferred_family_name"] = row.get("preferredFamilyName") or None
        record.refs["primary_org_key"] = row.get("primaryOrgSourcedId") or None
    record.password = row.get("password") or None
    record.enabled = boolean(row, "enabledUser")


def _role(row: SourceRow, record: ImportRecord, version: str) -> None:
    record.refs |= {
        "user_key": required(row, "userSourcedId"),
        "org_key": required(row, "orgSourcedId"),
    }
    record.fields |= {
        "role": required(row, "role"),
        "role_type": row.get("roleType") or "primary",
        "begin_date": row.get("beginDate") or None,
        "end_date": row.get("endDate") or None,
        "user_profile_key": row.get("userProfileSourcedId") or None,
    }


def _enrollment(row: SourceRow, record: ImportRecord, version: str) -> None:
    record.refs |= {
        "class_key": required(row, "classSourcedId"),
        "school_key": row.get("schoolSourcedId") or None,
        "user_key": required(row, "userSourcedId"),
    }
    record.fields |= {
        "role": _enrollment_role(row, version),
        "primary": bool(boolean(row, "primary")),
        "begin_date": row.get("beginDate") or None,
        "end_date": row.get("endDate") or None,
    }


def _enrollment_role(row: SourceRow, version: str) -> str:
    """The enrollment's role; 1.2 has no ``aide`` (:data:`ENROLLMENT_ROLES_1P2`): R102 unless
    in the CSV binding's extension form ``ext:aide`` (what a pull from a 1.1 hub writes),
    kept as that role when it is one of ours."""
    role = required(row, "role")
    if role.startswith("ext:"):
        return role.removeprefix("ext:")
    if version == "1.2" and role.casefold() not in (r.casefold() for r in ENROLLMENT_ROLES_1P2):
        raise RowProblem(
            "R102",
            f"role {role!r} is not a OneRoster 1.2 enrollment role "
            f"({', '.join(ENROLLMENT_ROLES_1P2)}; 1.1's aide is gone: send a helping adult as "
            "a teacher with primary false, or as ext:aide).",
            "role",
        )
    return role


def _demographics(row: SourceRow, record: ImportRecord, version: str) -> None:
    record.fields["birth_date"] = row.get("birthDate") or None
    record.fields["gender"] = row.get("sex") or None
    demographics: dict[str, Any] = {}
    for column in RACE_COLUMNS:
        value = boolean(row, column)
        if value is not None:
            demographics[column] = value
    for column in ("countryOfBirthCode", "stateOfBirthAbbreviation", "cityOfBirth"):
        if row.get(column):
            demographics[column] = row.get(column)
    if row.get("publicSchoolResidenceStatus"):
        demographics["publicSchoolResidenceStatus"] = row.get("publicSchoolResidenceStatus")
    record.fields["demographics"] = demographics


def _user_profile(row: SourceRow, record: ImportRecord, version: str) -> None:
    record.refs["user_key"] = required(row, "userSourcedId")
    record.fields["profile"] = {
        column: row.get(column)
        for column in (
            "profileType",
            "vendorId",
            "applicationId",
            "description",
            "credentialType",
            "username",
        )
        if row.get(column)
    }
    record.password = row.get("password") or None


KINDS = {
    "orgs.csv": "org",
    "academicSessions.csv": "academic_session",
    "courses.csv": "course",
    "classes.csv": "class",
    "users.csv": "user",
    "roles.csv": "role",
    "enrollments.csv": "enrollment",
    "demographics.csv": "demographics",
    "userProfiles.csv": "user_profile",
}
TRANSLATORS: dict[str, Callable[[SourceRow, ImportRecord, str], None]] = {
    "orgs.csv": _org,
    "academicSessions.csv": _session,
    "courses.csv": _course,
    "classes.csv": _class,
    "users.csv": _user,
    "roles.csv": _role,
    "enrollments.csv": _enrollment,
    "demographics.csv": _demographics,
    "userProfiles.csv": _user_profile,
}
