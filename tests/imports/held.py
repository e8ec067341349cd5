"""An import run in a thread and held in its write phase by its progress callback, so a test
can act while it is under way (issue 11 item 6: what other writers meet meanwhile)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from server.domain.connections import get_connection
from server.domain.import_runs import Report
from server.imports.engine import ImportOptions, import_source, open_source


class HeldImport:
    """Runs ``archive`` as the tenancy's "SIS" connection; held once ``at`` rows are done (the
    engine reports rows done after every batch it writes, and 0 while it reads the file)
    until the ``with`` block ends."""

    def __init__(self, tenancy: Any, archive: Path, at: int, **options: Any) -> None:
        self.at = at
        self.reached = threading.Event()
        self.go_on = threading.Event()
        self.outcome: list[Report | BaseException] = []
        with tenancy.database.session() as session:
            connection_id = get_connection(session, tenancy.tenant_id, "SIS").id
        source = open_source(archive.open("rb"), filename=archive.name)

        def run() -> None:
            try:
                self.outcome.append(
                    import_source(
                        tenancy.database,
                        tenancy.box,
                        tenancy.tenant_id,
                        connection_id,
                        source,
                        ImportOptions(**options),
                        progress=self._progress,
                    )
                )
            except BaseException as error:  # reported to the test thread
                self.outcome.append(error)
            finally:
                source.close()

        self.thread = threading.Thread(target=run)

    def _progress(self, done: int) -> None:
        if done >= self.at and not self.reached.is_set():
            self.reached.set()
            self.go_on.wait(timeout=120)

    def __enter__(self) -> HeldImport:
        self.thread.start()
        while not self.reached.is_set() and self.thread.is_alive():
            self.reached.wait(timeout=0.05)
        assert self.reached.is_set(), f"the import never wrote: {self.outcome}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.go_on.set()
        self.thread.join(timeout=300)

    def report(self) -> Report:
        (report,) = self.outcome
        assert isinstance(report, Report), report
        return report
