"""One long write of many rows (an import), made to cost the same per row at any size
(issue 15).

A first import of 20,000 users cost ~40% more per row than one of 2,000, for two reasons
measured in the process (``bench/README.md``):

- **SQLite's page cache** (2 MiB by default) holds a small part of the indexes a batch inserts
  into; a row's inserts into five indexes of random UUID keys then read most of their pages
  back from the operating system. The import's connection gets :data:`CACHE_MIB` for the
  write (SQLite fills it only with pages it reads) and its former size back after.
- **Python's full garbage collections** walk every object of the process (the modules, the
  mapped classes, the compiled statements: about a million) each time the import's own
  objects have grown enough: most of the time the collector took. :func:`gc.freeze` moves
  what exists at the start out of their way until the last long write of the process ends
  (:func:`gc.unfreeze`); nothing is lost: a cycle frozen is collected after. The young
  generation's threshold is raised to :data:`YOUNG_OBJECTS` meanwhile: with the default 700
  an import ran a collection every few rows (its rows are tuples and dicts), ~8% of a first
  import's CPU; the memory it lets wait is what cycles a few thousand rows make, if any
  (reference counting frees everything else at once).

Example::

    with long_write(session):
        ...  # batches of inserts
    with frozen_heap():
        ...  # reading a package ahead of the write (no page cache to grow: only the freeze)
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

# 128 MiB was measured too (issue 15, 2026-12-02, bench figures of branch bigimport): SQLite fills
# it at 20,000 users already (peak RSS 149 -> 259 MiB, 100,000 users 210 -> 309 MiB) for no
# CPU seen under load (20k trial 18.1 / 19.0 s, apply 27.8 / 26.6 s)
CACHE_MIB = 32
YOUNG_OBJECTS = 100_000  # new container objects between two collections of the youngest

_lock = threading.Lock()
_writers = 0
_thresholds: tuple[int, int, int] = (700, 10, 10)  # the collector's, restored by the last


@contextmanager
def long_write(session: Session) -> Iterator[None]:
    """Run the block with a larger SQLite page cache on ``session``'s connection and the
    heap that existed before it frozen (see the module docstring); both restored after."""
    connection = session.connection()
    sqlite = connection.dialect.name == "sqlite"
    before = connection.exec_driver_sql("PRAGMA cache_size").scalar() if sqlite else None
    if sqlite:
        connection.exec_driver_sql(f"PRAGMA cache_size = {-CACHE_MIB * 1024}")
    _freeze()
    try:
        yield
    finally:
        _thaw()
        if sqlite:
            with suppress(SQLAlchemyError):  # a broken connection: the pool discards it
                connection.exec_driver_sql(f"PRAGMA cache_size = {int(before or -2000)}")


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Run the block with the heap that existed before it frozen, as :func:`long_write` does:
    for long reads that build many objects too (an import's read-ahead hashes every row of
    its package before the write transaction)."""
    _freeze()
    try:
        yield
    finally:
        _thaw()


def _freeze() -> None:
    global _writers, _thresholds
    with _lock:
        if _writers == 0:
            gc.freeze()
            _thresholds = gc.get_threshold()
            gc.set_threshold(max(YOUNG_OBJECTS, _thresholds[0]), *_thresholds[1:])
        _writers += 1


def _thaw() -> None:
    global _writers
    with _lock:
        _writers -= 1
        if _writers == 0:
            gc.set_threshold(*_thresholds)
            gc.unfreeze()
