"""What every benchmark reports: a figure, its baseline from the same run, and the ratio.

A benchmark returns :class:`Figure` objects; ``python -m bench`` prints them as one table and
as one JSON line each, so a person reads the table and a script reads the lines, e.g.::

    scim create @20k          412.0 req/s   515.3 req/s (scim2-server)   0.80x
    {"benchmark": "scim", "figure": "create @20k", "value": 412.0, ... "ratio": 0.8}
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Figure:
    """One measured figure; ``ratio`` is value / baseline (read ``better`` for its sense)."""

    benchmark: str
    figure: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    better: str = "higher"  # or "lower": which way of the ratio is good
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if not self.baseline:
            return None
        return self.value / self.baseline

    def json_line(self) -> str:
        record = asdict(self)
        ratio = self.ratio
        record["ratio"] = None if ratio is None else round(ratio, 3)
        return json.dumps(record, sort_keys=False)


def table(figures: list[Figure]) -> str:
    """The figures as an aligned text table, one row each."""
    rows = [("benchmark", "figure", "value", "baseline (same run)", "ratio")]
    for f in figures:
        base = f"{f.baseline:,.1f} {f.unit} ({f.baseline_name})" if f.baseline else "-"
        ratio = f"{f.ratio:.2f}x" if f.ratio is not None else "-"
        if f.ratio is not None:
            ratio += " (higher is better)" if f.better == "higher" else " (lower is better)"
        rows.append((f.benchmark, f.figure, f"{f.value:,.1f} {f.unit}", base, ratio))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
