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
from typing import Any

from cryptography.fernet import Fernet

from server.domain.import_records import FileProblem, ImportRecord, RowResult, Sighted

Item = ImportRecord | RowResult | Sighted
CHUNK = 500  # items pickled together (one pickle per item cost ~0.1 ms each to load)


class Spool:
    """The items of one file, read once and replayed any number of times, in order."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self._sealer = Fernet(Fernet.generate_key())
        self.problem: FileProblem | None = None
        self.count = 0
        self.translated = 0  # rows to apply in the write phase (not recognised by their hash)
        self.sighted = 0  # rows recognised by their stored hash (records that exist)
        self._chunks = 0
        self._pending: list[Any] = []  # RowResults; ImportRecords and Sighted rows as tuples

    @classmethod
    def of(cls, items: Iterable[Item], check: Callable[[int], None] | None = None) -> Spool:
        """Read ``items`` to the end, or up to the first :class:`FileProblem`."""
        spool = cls()
        try:
            for item in items:
                spool._add(item)
                if len(spool._pending) >= CHUNK:
                    spool._dump()
                    if check is not None:
                        check(0)  # a shutdown stops the run while it reads, too
        except FileProblem as problem:
            spool.problem = problem
        spool._dump()
        spool._file.flush()
        return spool

    def _add(self, item: Item) -> None:
        if isinstance(item, ImportRecord):
            self.translated += 1
            password = item.password
            if password:
                password = self._sealer.encrypt(password.encode()).decode()
            # a plain tuple: pickled and loaded at twice the speed of the dataclass
            self._pending.append(
                (
                    item.file,
                    item.number,
                    item.kind,
                    item.key,
                    item.fields,
                    item.refs,
                    item.status,
                    password,
                    item.enabled,
                    item.repairs,
                    item.source,
                )
            )
        elif type(item) is Sighted:  # a tuple led by None: no record's file is None
            self.sighted += 1
            self._pending.append(
                (
                    None,
                    item.file,
                    item.number,
                    item.key,
                    item.repairs,
                    item.refs,
                    item.columns,
                    item.line,
                )
            )
        else:
            self._pending.append(item)
        self.count += 1

    def _dump(self) -> None:
        if self._pending:
            pickle.dump(self._pending, self._file, protocol=pickle.HIGHEST_PROTOCOL)
            self._chunks += 1
            self._pending = []

    def __iter__(self) -> Iterator[Item]:
        self._file.seek(0)
        for _ in range(self._chunks):
            chunk: list[Any] = pickle.load(self._file)  # our own temporary file
            for item in chunk:
                if type(item) is not tuple:
                    yield item
                    continue
                if item[0] is None:
                    yield Sighted(*item[1:])
                    continue
                record = ImportRecord(*item)
                if record.password:
                    record.password = self._sealer.decrypt(record.password.encode()).decode()
                yield record
        if self.problem is not None:
            raise self.problem

    def close(self) -> None:
        self._file.close()


def replay(spools: dict[str, Spool], name: str, read: Callable[[], Iterator[Any]]) -> Iterator[Any]:
    """The spooled items of file ``name``, or (not read ahead) ``read()``'s."""
    spool = spools.get(name)
    return iter(spool) if spool is not None else read()
