"""Read a file's rows before the write transaction (issue 11 item 6, SPEC §5).

Reading, checking and translating a file's rows is most of an import's work. Done inside the
import's transaction, it held SQLite's write lock the whole time (a 102k-row package kept
every other writer, SCIM included, waiting for ~80 s). A source now reads every file first
into a :class:`Spool` (a temporary file, so memory stays flat), and the engine opens its
write transaction only after that; the handlers then replay the spooled rows.

A :class:`~server.domain.import_records.FileProblem` met while reading is kept in the spool
and raised again at the same place on replay, so a run reports exactly what it reported when
reading and writing were interleaved. Passwords never reach the disk in clear: they are
sealed with a key that lives only in memory for the run.

Example::

    spool = Spool.of(rows, check=progress)
    for item in spool:     # the same items, in order; a FileProblem is raised where met
        ...
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import Any

from cryptography.fernet import Fernet

from server.domain.import_records import FileProblem, ImportRecord, RowResult

Item = ImportRecord | RowResult
CHECK_EVERY = 500  # rows between two calls of the run's progress check while reading


class Spool:
    """The items of one file, read once and replayed any number of times, in order."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self._sealer = Fernet(Fernet.generate_key())
        self.problem: FileProblem | None = None
        self.count = 0

    @classmethod
    def of(cls, items: Iterable[Item], check: Callable[[int], None] | None = None) -> Spool:
        """Read ``items`` to the end, or up to the first :class:`FileProblem`."""
        spool = cls()
        try:
            for item in items:
                spool._write(item)
                if check is not None and spool.count % CHECK_EVERY == 0:
                    check(0)
        except FileProblem as problem:
            spool.problem = problem
        spool._file.flush()
        return spool

    def _write(self, item: Item) -> None:
        if isinstance(item, ImportRecord) and item.password:
            item = replace(item, password=self._sealer.encrypt(item.password.encode()).decode())
        pickle.dump(item, self._file, protocol=pickle.HIGHEST_PROTOCOL)
        self.count += 1

    def __iter__(self) -> Iterator[Item]:
        self._file.seek(0)
        for _ in range(self.count):
            item: Item = pickle.load(self._file)  # our own temporary file
            if isinstance(item, ImportRecord) and item.password:
                secret = self._sealer.decrypt(item.password.encode()).decode()
                item = replace(item, password=secret)
            yield item
        if self.problem is not None:
            raise self.problem

    def close(self) -> None:
        self._file.close()


def replay(spools: dict[str, Spool], name: str, read: Callable[[], Iterator[Any]]) -> Iterator[Any]:
    """The spooled items of file ``name``, or (not read ahead) ``read()``'s."""
    spool = spools.get(name)
    return iter(spool) if spool is not None else read()
