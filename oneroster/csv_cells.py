"""The OneRoster CSV binding's rules for cells, whatever the file: required cells (R101), the
GUID type of sourcedId columns and ``dateLastModified`` (R102), booleans and ``status``, and the
lenient repairs of known drift (:func:`repair`, W203). Worked out once per header
(:class:`CellPlan`), applied per row by :mod:`oneroster.csv_records`.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from oneroster.csv_files import SourceRow, iter_list, parse_boolean
from server.domain.import_records import RowProblem
from server.domain.vocabulary import (
    CLASS_TYPES,
    ENROLLMENT_ROLES,
    ORG_TYPES,
    ROLES,
    SESSION_TYPES,
)

STATUSES = {"active": "active", "tobedeleted": "tobedeleted", "inactive": "tobedeleted"}
RACE_COLUMNS = (
    "americanIndianOrAlaskaNative",
    "asian",
    "blackOrAfricanAmerican",
    "nativeHawaiianOrOtherPacificIslander",
    "white",
    "demographicRaceTwoOrMoreRaces",
    "hispanicOrLatinoEthnicity",
)


# Columns holding sourcedIds: the OneRoster GUID type, 1-255 characters from
# ``0-9 A-Z a-z . - _ / @`` (the rule of LongsightGroup/oneroster's parseOneRosterGuid).
GUID_COLUMNS = (
    "sourcedId",
    "parentSourcedId",
    "schoolYearSourcedId",
    "orgSourcedId",
    "orgSourcedIds",
    "courseSourcedId",
    "schoolSourcedId",
    "termSourcedIds",
    "classSourcedId",
    "userSourcedId",
    "agentSourcedIds",
    "primaryOrgSourcedId",
    "userProfileSourcedId",
)
GUID = re.compile(r"[0-9A-Za-z._/@-]{1,255}")
# Cells joined by newlines (none inside a cell), each empty or one GUID
GUID_CELLS = re.compile(r"(?:[0-9A-Za-z._/@-]{1,255})?(?:\n(?:[0-9A-Za-z._/@-]{1,255})?)*")
# The binding's DateTime: YYYY-MM-DDTHH:MM:SS.sssZ (LongsightGroup/oneroster: invalid_datetime)
DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z")


def required(row: SourceRow, column: str) -> str:
    value = row.get(column)
    if not value:
        raise RowProblem("R101", f"{column} is empty.", column)
    return value


def repair(row: SourceRow, mode: str) -> tuple[SourceRow, list[str]]:
    """Repair the drift real producers send, each repair described as W203 text.

    - list cells with empty items (``t1,,t2``): the items;
    - booleans in another case (``TRUE``) and enumerations in another case
      (``classType`` ``Scheduled``): the spec's spelling;
    - ``status`` in another case, or ``inactive`` (the 1.2 REST text reads it as
      ``tobedeleted``);
    - bulk files leave ``status`` and ``dateLastModified`` blank (1.2.1 CSV §2.1.1): a filled
      ``dateLastModified`` is ignored, a filled ``status`` is read as given;
    - delta files need both: a blank ``status`` is read as ``active``, a blank
      ``dateLastModified`` as the import's time; an ISO 8601 date or date-time in another
      form (``2023-05-01``, ``2017-05-06 08:01:05``) becomes ``YYYY-MM-DDTHH:MM:SS.sssZ``.
    """
    plan = cell_plan(row)
    get = row.get
    values: dict[str, str] | None = None  # copied on the first repair only
    repairs: list[str] = []

    def fix(column: str, to: str) -> None:
        nonlocal values
        if values is None:
            values = dict(row.values)
        repairs.append(f"value repaired: {column} {values.get(column, '')!r} → {to!r}")
        values[column] = to

    for column in plan.booleans:
        text = get(column)
        if text and text not in ("true", "false") and text.casefold() in ("true", "false"):
            fix(column, text.casefold())
    for column, choices in plan.enumerations:
        text = get(column)
        if text and text not in choices:
            spelled = next((c for c in choices if c.casefold() == text.casefold()), text)
            if spelled != text:
                fix(column, spelled)
    for column in plan.lists:
        text = get(column)
        if "," in text and any(not item.strip() for item in text.split(",")):
            fix(column, ",".join(item for item in text.split(",") if item.strip()))
    status = get("status")
    if status and status not in ("active", "tobedeleted") and status.casefold() in STATUSES:
        fix("status", STATUSES[status.casefold()])
    modified = get("dateLastModified")
    if mode != "bulk" and modified and not DATE_TIME.fullmatch(modified):
        fix("dateLastModified", _date_time(modified))
    if mode == "bulk":
        if modified:
            fix("dateLastModified", "")
        now = (row.values if values is None else values).get("status")  # as given
        if now == "active":
            fix("status", "")
        elif now:
            repairs.append(f"value repaired: status {status!r} → {now!r} (kept)")
    else:
        if not status:
            fix("status", "active")
        if not modified:
            fix("dateLastModified", "the import's time")
    if values is None:
        return row, repairs
    return SourceRow(row.file, row.number, values), repairs


def check_guids(row: SourceRow, plan: CellPlan) -> None:
    """Every sourcedId cell holds GUIDs (R102)."""
    joined = "\n".join(map(row.get, plan.guids))
    if joined.count("\n") == len(plan.guids) - 1 and GUID_CELLS.fullmatch(joined):
        return  # every cell empty or one GUID (the usual case): checked in one match
    for column in plan.guids:
        cell = row.get(column)
        if not cell or GUID.fullmatch(cell):  # one GUID: no need to split the list
            continue
        for item in iter_list(cell):
            if not GUID.fullmatch(item):
                raise RowProblem(
                    "R102",
                    f"{column} {item!r} is not a OneRoster GUID: use 1-255 characters from "
                    "0-9 A-Z a-z . - _ / @.",
                    column,
                )


@dataclass(frozen=True)
class CellPlan:
    """The columns of a file's header that :func:`repair`, :func:`check_guids` and
    :func:`metadata_of` look at, in their order (worked out once per header, not per row)."""

    booleans: tuple[str, ...]
    enumerations: tuple[tuple[str, tuple[str, ...]], ...]
    lists: tuple[str, ...]
    guids: tuple[str, ...]
    metadata: tuple[str, ...]


def cell_plan(row: SourceRow) -> CellPlan:
    return plan_of(row.file, tuple(row.values))


@functools.lru_cache(maxsize=64)
def plan_of(file: str, columns: tuple[str, ...]) -> CellPlan:
    present = set(columns)
    return CellPlan(
        booleans=tuple(c for c in BOOLEAN_COLUMNS if c in present),
        enumerations=tuple(
            (c, choices) for c, choices in ENUMERATIONS.get(file, {}).items() if c in present
        ),
        lists=tuple(c for c in LIST_COLUMNS if c in present),
        guids=tuple(c for c in GUID_COLUMNS if c in present),
        metadata=tuple(c for c in columns if c.startswith("metadata.")),
    )


def _date_time(text: str) -> str:
    """An ISO 8601 date or date-time in the CSV binding's form ``YYYY-MM-DDTHH:MM:SS.sssZ``.

    :raises ValueError: not ISO 8601.
    """
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def check_modified(row: SourceRow) -> None:
    """``dateLastModified``, when given, is an ISO 8601 date or date-time (R102); one not in
    the binding's exact form is repaired (W203) by :func:`repair`."""
    text = row.get("dateLastModified")
    if not text:
        return
    try:
        _date_time(text)
    except ValueError:
        raise RowProblem(
            "R102",
            f"dateLastModified {text!r} is not an ISO 8601 date-time (YYYY-MM-DDTHH:MM:SS.sssZ).",
            "dateLastModified",
        ) from None


def boolean(row: SourceRow, column: str) -> bool | None:
    try:
        return parse_boolean(row.get(column))
    except ValueError:
        raise RowProblem(
            "R102", f"{column} must be true or false, not {row.get(column)!r}.", column
        ) from None


def status_of(row: SourceRow) -> str:
    text = row.get("status")
    if not text:
        return "active"
    status = STATUSES.get(text.casefold())
    if status is None:
        raise RowProblem("R102", f"status must be active or tobedeleted, not {text!r}.", "status")
    return status


def metadata_of(row: SourceRow, plan: CellPlan) -> dict[str, str]:
    values = row.values
    return {k: values[k] for k in plan.metadata if values[k]}


LIST_COLUMNS = (
    "orgSourcedIds",
    "termSourcedIds",
    "agentSourcedIds",
    "userIds",
    "grades",
    "subjects",
    "subjectCodes",
    "periods",
)
BOOLEAN_COLUMNS = ("enabledUser", "primary", *RACE_COLUMNS)
ENUMERATIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "orgs.csv": {"type": ORG_TYPES},
    "academicSessions.csv": {"type": SESSION_TYPES},
    "classes.csv": {"classType": CLASS_TYPES},
    "users.csv": {"role": ROLES},
    "roles.csv": {"role": ROLES, "roleType": ("primary", "secondary")},
    "enrollments.csv": {"role": ENROLLMENT_ROLES},
    "demographics.csv": {"sex": ("male", "female", "unspecified", "other")},
}
