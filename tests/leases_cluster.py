"""Replica processes for the real-server lease tests and the failover benchmark.

`Cluster` starts ``tests/leases_replica.py`` processes, collects the JSON
lines they print (one reader thread each) and answers questions about them:
who holds the lease now, when did someone acquire it, what did the fenced
sink accept. Times are ``time.monotonic()`` readings, comparable across the
processes of one machine.
"""

from __future__ import annotations

import inspect
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPLICA = Path(__file__).with_name("leases_replica.py")
ROOT = REPLICA.parent.parent

Event = dict[str, Any]


class Replica:
    def __init__(self, cluster: Cluster, index: int, args: list[str]) -> None:
        self.index = index
        self.cluster = cluster
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, str(REPLICA), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.pid = self.process.pid
        self.events: list[Event] = []
        self.stderr: list[str] = []
        self.readers = [
            threading.Thread(target=self._read, daemon=True),
            threading.Thread(target=self._read_errors, daemon=True),
        ]
        for reader in self.readers:
            reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            event = json.loads(line)
            event["replica"] = self.index
            self.events.append(event)
            self.cluster.feed.put(event)

    def _read_errors(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr.append(line)

    @property
    def holds(self) -> bool:
        """True if its last acquired/lost line is an acquire (and it runs)."""
        for event in reversed(self.events):
            if event["event"] in ("acquired", "lost", "stopped"):
                return event["event"] == "acquired" and self.process.poll() is None
        return False

    def signal(self, number: int) -> float:
        """Send a signal; return the monotonic time it was sent."""
        at = time.monotonic()
        os.kill(self.pid, number)
        return at


class Cluster:
    """Replica processes contending for one lease (a fresh name per cluster)."""

    def __init__(
        self,
        backend: str,
        url: str,
        sink: Path | None = None,
        *,
        ttl: float = 2.0,
        name: str | None = None,
        mode: str = "keeper",
    ) -> None:
        self.mode = mode
        self.backend = backend
        self.url = url
        self.ttl = ttl
        self.name = name or f"lease-test-{uuid.uuid4().hex[:12]}"
        self.sink = sink
        self.replicas: list[Replica] = []
        self.feed: queue.Queue[Event] = queue.Queue()
        self.seen: list[Event] = []

    def start(self, count: int = 1, *, holder: str | None = None) -> list[Replica]:
        started = []
        for _ in range(count):
            index = len(self.replicas)
            args = ["--backend", self.backend, "--url", self.url, "--name", self.name]
            args += ["--ttl", str(self.ttl), "--app-name", f"{self.name}-{index}"]
            args += ["--mode", self.mode]
            if holder is not None:
                args += ["--holder", holder]
            if self.sink is not None:
                args += ["--sink", str(self.sink)]
            replica = Replica(self, index, args)
            self.replicas.append(replica)
            started.append(replica)
        for replica in started:
            self.wait_for(lambda e, r=replica: e["event"] == "ready" and e["replica"] == r.index)
        return started

    def wait_for(self, predicate: Callable[[Event], bool], timeout: float = 15.0) -> Event:
        """Return the first event (seen before or arriving) that matches ``predicate``."""
        for event in self.seen:
            if predicate(event):
                return event
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                for replica in self.replicas:  # ask the live ones for their state
                    if replica.process.poll() is None:
                        os.kill(replica.pid, signal.SIGUSR2)
                time.sleep(0.5)
                for replica in self.replicas:
                    Path(f"/tmp/leases_dump_{replica.pid}.txt").write_text("".join(replica.stderr))
                raise AssertionError(
                    f"no event matching {_source(predicate)} within {timeout} s"
                    f" (dumps in /tmp/leases_dump_<pid>.txt): {self.describe()}"
                )
            try:
                event = self.feed.get(timeout=remaining)
            except queue.Empty:
                continue
            self.seen.append(event)
            if predicate(event):
                return event

    def drain(self, seconds: float) -> None:
        """Collect events for ``seconds`` of real time (to observe that nothing happens)."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                self.seen.append(self.feed.get(timeout=remaining))
            except queue.Empty:
                pass

    def events(self, kind: str) -> list[Event]:
        return [event for event in self.seen if event["event"] == kind]

    def holder(self, timeout: float = 15.0) -> tuple[Replica, Event]:
        """Wait until some replica acquires (or already holds); return it and its event."""
        for replica in self.replicas:
            if replica.holds:
                acquired = [e for e in replica.events if e["event"] == "acquired"][-1]
                return replica, acquired
        event = self.wait_for(lambda e: e["event"] == "acquired", timeout)
        return self.replicas[event["replica"]], event

    def acquired_after(self, moment: float, timeout: float = 15.0) -> Event:
        return self.wait_for(lambda e: e["event"] == "acquired" and e["t"] > moment, timeout)

    def sink_log(self) -> list[tuple[int, int, float, bool]]:
        assert self.sink is not None
        path = self.sink / "sink.log"
        if not path.exists():
            return []
        rows = []
        for line in path.read_text().splitlines():
            fence, pid, at, accepted = line.split()
            rows.append((int(fence), int(pid), float(at), accepted == "1"))
        return rows

    def describe(self) -> str:
        parts = []
        for replica in self.replicas:
            tail = [(e["event"], e.get("fence"), e.get("reason")) for e in replica.events[-4:]]
            parts.append(
                f"#{replica.index} pid {replica.pid}: {tail} {''.join(replica.stderr)[-300:]}"
            )
        return "; ".join(parts)

    def close(self) -> None:
        for replica in self.replicas:
            if replica.process.poll() is None:
                os.kill(replica.pid, signal.SIGCONT)
                replica.process.terminate()
        for replica in self.replicas:
            try:
                replica.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                replica.process.kill()
                replica.process.wait()
        for replica in self.replicas:
            for reader in replica.readers:
                reader.join(timeout=5)
            for stream in (replica.process.stdout, replica.process.stderr):
                if stream is not None:
                    stream.close()


def _source(predicate: Callable[[Event], bool]) -> str:
    """The line that wrote ``predicate`` (which wait failed, in a failure's message)."""
    try:
        return repr(inspect.getsource(predicate).strip())
    except (OSError, TypeError):
        return repr(predicate)
