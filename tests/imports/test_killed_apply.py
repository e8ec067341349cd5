"""A process killed in the middle of an apply leaves the database as it was."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from server.db import Enrollment, ImportRun, User
from tests.conftest import TEST_SECRET
from tests.imports.packages import district, package

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import sys, time
    from server.db.session import Database
    from server.domain.secrets import SecretBox
    from server.imports.engine import ImportOptions, run_import

    url, secret, tenant_id, path = sys.argv[1:5]

    def progress(done):
        if done >= 500:
            print("midway", flush=True)
            time.sleep(120)

    run_import(Database(url), SecretBox(secret), tenant_id, "SIS", path, ImportOptions(),
               progress=progress)
    print("finished", flush=True)
    """
)


def test_killing_the_process_mid_apply_writes_nothing(tenancy, tmp_path, database_url):
    path = package(tmp_path / "big.zip", "1.1", district(students=520))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, database_url, TEST_SECRET, tenancy.tenant_id, str(path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "midway"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -signal.SIGKILL
    assert tenancy.count(User) == 0
    assert tenancy.count(Enrollment) == 0
    assert tenancy.count(ImportRun) == 0
    # the database is healthy afterwards: the same file imports completely
    report = tenancy.run(path)
    assert report.status == "applied" and tenancy.count(User) == 521
