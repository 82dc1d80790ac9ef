"""The fencing example of the docs (examples/replicas/fenced_report.py), run for real.

Two copies against the real Redis server and one SQLite store: one writes,
the other waits; after ``kill -9`` of the writer the other takes over with a
larger fence, and the store's fence never goes backwards.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from test_leases_replicas import SLACK, server_url

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "replicas" / "fenced_report.py"
sys.path.insert(0, str(EXAMPLE.parent))

from fenced_report import FencedStore, StaleFence  # noqa: E402


def rows(db: Path) -> list[tuple[int, int]]:
    if not db.exists():
        return []
    with sqlite3.connect(db, timeout=10) as connection:
        try:
            found = connection.execute("SELECT fence, pid FROM reports ORDER BY rowid")
        except sqlite3.OperationalError:  # the file exists, its table not yet
            return []
        return [(int(fence), int(pid)) for fence, pid in found]


def wait_rows(db: Path, predicate: object, timeout: float = 20.0) -> list[tuple[int, int]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = rows(db)
        if predicate(found):  # type: ignore[operator]
            return found
        time.sleep(0.05)
    raise AssertionError(f"the store never reached the expected state: {rows(db)}")


def test_the_store_refuses_a_write_with_an_older_fence(tmp_path: Path) -> None:
    store = FencedStore(str(tmp_path / "store.db"))
    store.write(3, "new holder")
    with pytest.raises(StaleFence, match=r"^fence 2 is older than 3$"):
        store.write(2, "old holder, resumed")
    store.write(3, "same holder again")
    assert [fence for fence, _ in rows(tmp_path / "store.db")] == [3, 3]


def test_two_copies_one_writer_and_a_fenced_handover_after_kill_9(tmp_path: Path) -> None:
    url = server_url("redis")
    db = tmp_path / "store.db"
    # A lease name of its own, so a run never meets an earlier one's lease.
    name = f"example-{uuid.uuid4().hex[:8]}"
    command = [sys.executable, str(EXAMPLE), "--redis", url, "--db", str(db), "--ttl", "2"]
    command += ["--name", name]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    copies = [
        subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    try:
        first = wait_rows(db, lambda found: len(found) >= 3)
        writers = {pid for _, pid in first}
        assert len(writers) == 1
        (holder_pid,) = writers
        holder = next(copy for copy in copies if copy.pid == holder_pid)
        killed_at = time.monotonic()
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        after = wait_rows(db, lambda found: any(pid != holder_pid for _, pid in found))
        took = time.monotonic() - killed_at
        assert took <= 2.0 + 0.27 + 0.5 + 2 * SLACK  # ttl + retry + one loop tick + noise
        fences = [fence for fence, _ in after]
        assert fences == sorted(fences)  # never backwards
        assert fences[-1] == fences[0] + 1
    finally:
        for copy in copies:
            if copy.poll() is None:
                copy.send_signal(signal.SIGTERM)
        for copy in copies:
            _, errors = copy.communicate(timeout=20)
            assert b"Traceback" not in errors, errors.decode()
