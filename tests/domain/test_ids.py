"""Record ids (``new_id``) stay random version-4 UUIDs in canonical text form while they are
made a pool at a time (issue 15), and a forked worker never repeats its parent's pool; roster
records' ids (``new_record_id``) are version-7 UUIDs that ascend as they are made."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable

import pytest

from server.db import new_id, new_record_id


def test_ids_are_random_version_4_uuids_in_canonical_form() -> None:
    ids = [new_id() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    for made in ids:
        parsed = uuid.UUID(made)
        assert (str(parsed), parsed.version, parsed.variant) == (made, 4, uuid.RFC_4122)
    # every random digit takes every value (the version digit is always 4; variant 8/9/a/b)
    assert {made[19] for made in ids} == set("89ab")
    assert {made[0] for made in ids} == set("0123456789abcdef")


@pytest.mark.parametrize(("make", "version"), [(new_id, 4), (new_record_id, 7)])
def test_a_forked_worker_makes_ids_of_its_own(make: Callable[[], str], version: int) -> None:
    make()  # the parent holds a pool
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child process
        os.write(writing, make().encode())
        os._exit(0)
    os.close(writing)
    os.waitpid(child, 0)
    childs = os.read(reading, 36).decode()
    os.close(reading)
    assert uuid.UUID(childs).version == version
    assert childs not in {make() for _ in range(256)}


def test_record_ids_are_time_ordered_version_7_uuids_in_canonical_form() -> None:
    """Made later, sorted later (in one process, across pools), so an INSERT appends to the
    indexes of its id (issue 15); the low 62 bits stay random."""
    before = time.time_ns() // 1_000_000
    ids = [new_record_id() for _ in range(5000)]
    after = time.time_ns() // 1_000_000
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for place, made in enumerate(ids):
        parsed = uuid.UUID(made)
        assert (str(parsed), parsed.version, parsed.variant) == (made, 7, uuid.RFC_4122)
        if place >= 256:  # of a pool made here (the first may be older): its milliseconds
            assert before <= parsed.int >> 80 <= after + 5
    assert {made[19] for made in ids} == set("89ab")
    assert {made[-1] for made in ids} == set("0123456789abcdef")
