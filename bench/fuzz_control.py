"""Fuzz a running service's control socket: every request answered, nothing crashes.

A real ``supervised-loops run`` process serves a small tree; this script
sends it ``--cases`` request lines, each on its own connection: random
bytes, truncated JSON, JSON nested tens of thousands deep, integers of
thousands of digits, wrong types in every field, odd paths and time zones,
and valid requests. Every 100 cases it also sends a valid ``status`` and
times the reply. It reports:

* requests without a reply (must be 0) and replies of the wrong shape;
* whether the service is still running at the end, and whether its log
  holds a traceback (crashes: must be 0);
* the slowest valid request (must stay under 1 s);
* the service's resident memory after the first 1 000 cases and at the end.

    python bench/fuzz_control.py [--cases 100000] [--seed N]

Requests that would end the whole service (``stop``/``cancel`` of the root)
are sent as ``status`` instead, so the run covers the full count.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

SCRIPT = Path(sys.executable).with_name("supervised-loops")

TARGET = """
from supervised_loops import Supervisor, child, loop


def minutely(name):
    async def body():
        pass

    return loop(minutes=1, name=name)(body)


tree = Supervisor(
    Supervisor(child(minutely("writer")), child(minutely("poller")), name="ingest"),
    child(minutely("report")),
    name="app",
)
"""

COMMANDS = [
    "status", "stop", "cancel", "restart", "pause", "resume", "run-now", "change-interval",
    "health", "events",
]  # fmt: skip
PATHS: list[Any] = [
    "app", "app/ingest", "ingest/poller", "app/ingest/writer", "report", "/", "", "app/",
    "a//b", "poller", "nope", "x" * 2000, "ingest/poller/deeper", "\x00", "é/ü", 5, None,
    ["app"], {"p": 1},
]  # fmt: skip
ZONES: list[Any] = [
    "Europe", "Europe/Berlin", "UTC", "Etc/GMT+5", "../etc/passwd", "x" * 300, "Europe/",
    "/etc/passwd", "zone.tab", "tzdata.zi", "America", "a\x00b", "", "Europe//Berlin", 5, None,
]  # fmt: skip
CLOCKS: list[Any] = ["09:30", "25:00", "", "9", "09:30:00+02:00", "23:59:59.999999", 930, None]
ROOT_ALIASES = (None, "app")


def number(rng: random.Random) -> Any:
    return rng.choice(
        [
            rng.randint(-(10**6), 10**6),
            rng.uniform(-1e6, 1e6),
            10**4000,
            float("inf"),
            float("nan"),
            1e308,
            True,
            None,
            "5",
            [],
            0,
        ]
    )


def text(rng: random.Random, size: int = 12) -> str:
    return "".join(chr(rng.randint(1, 0x2FF)) for _ in range(rng.randint(0, size)))


def time_item(rng: random.Random) -> Any:
    roll = rng.random()
    if roll < 0.4:
        return rng.choice(CLOCKS)
    if roll < 0.8:
        return {"time": rng.choice(CLOCKS), "tz": rng.choice(ZONES)}
    return {text(rng, 4): rng.choice(CLOCKS)}


def request(rng: random.Random) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if rng.random() < 0.95:
        fields["command"] = rng.choice(COMMANDS) if rng.random() < 0.9 else text(rng)
    if rng.random() < 0.8:
        fields["path"] = rng.choice(PATHS) if rng.random() < 0.8 else text(rng)
    for unit in ("seconds", "minutes", "hours"):
        if rng.random() < 0.15:
            fields[unit] = number(rng)
    if rng.random() < 0.2:
        fields["time"] = (
            [time_item(rng) for _ in range(rng.randint(0, 4))]
            if rng.random() < 0.7
            else time_item(rng)
        )
    if rng.random() < 0.05:
        fields[text(rng, 6)] = number(rng)
    if fields.get("command") in ("stop", "cancel") and fields.get("path") in ROOT_ALIASES:
        fields["command"] = "status"  # the run must outlive its cases
    return fields


def encode(fields: dict[str, Any]) -> bytes:
    try:
        return json.dumps(fields).encode()
    except ValueError:  # an int json.dumps itself refuses to write
        return b'{"command": "status", "seconds": ' + b"9" * 4000 + b"}"


def case(rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.55:
        line = encode(request(rng))
    elif roll < 0.7:
        line = bytes(rng.randrange(256) for _ in range(rng.randint(0, 300)))
    elif roll < 0.8:
        whole = encode(request(rng))
        line = whole[: rng.randint(0, len(whole))]
    elif roll < 0.9:
        opener = rng.choice([b"[", b'{"a": ', b'{"command": "stop", "path": ['])
        line = opener * rng.randint(1, 60_000 // len(opener))
    else:
        digits = rng.randint(3_000, 6_000)
        line = b'{"command": "change-interval", "path": "report", "seconds": ' + b"9" * digits
        line += b"}"
    return line.replace(b"\n", b" ")[: 64 * 1024]


def exchange(path: Path, line: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(10)
        client.connect(str(path))
        client.sendall(line + b"\n")
        with client.makefile("rb") as replies:
            return replies.readline()


def well_formed(raw: bytes) -> bool:
    try:
        reply = json.loads(raw)
    except ValueError:
        return False
    if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
        return False
    if reply["ok"]:
        return set(reply) == {"ok", "result"}
    error = reply.get("error")
    return (
        set(reply) == {"ok", "error"}
        and isinstance(error, dict)
        and isinstance(error.get("type"), str)
        and isinstance(error.get("message"), str)
    )


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    rng = random.Random(seed)
    directory = Path(tempfile.mkdtemp(prefix="fuzz-", dir="/tmp"))
    (directory / "app.py").write_text(textwrap.dedent(TARGET))
    sock = directory / "s" / "app.sock"
    log = (directory / "service.log").open("w")
    service = subprocess.Popen(
        [str(SCRIPT), "run", "app.py:tree", "--no-live", "--socket", str(sock)],
        cwd=directory,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while not sock.exists():
            if time.monotonic() > deadline or service.poll() is not None:
                raise SystemExit("the service did not start")
            time.sleep(0.05)
        unanswered = malformed = 0
        slowest = 0.0
        rss_early = 0
        started = time.perf_counter()
        for index in range(args.cases):
            raw = exchange(sock, case(rng))
            if not raw.endswith(b"\n"):
                unanswered += 1
            elif not well_formed(raw):
                malformed += 1
            if index % 100 == 0:
                began = time.perf_counter()
                reply = json.loads(exchange(sock, b'{"command": "status", "path": "ingest"}'))
                slowest = max(slowest, time.perf_counter() - began)
                assert reply["ok"], reply
            if index == 1_000:
                rss_early = rss_kib(service.pid)
        took = time.perf_counter() - started
        rss_end = rss_kib(service.pid)
        alive = service.poll() is None
    finally:
        service.terminate()
        status = service.wait(30)
        log.close()
    output = (directory / "service.log").read_text()
    tracebacks = output.count("Traceback")
    shutil.rmtree(directory, ignore_errors=True)
    print(f"seed {seed}: {args.cases} cases in {took:.1f} s ({args.cases / took:.0f}/s)")
    print(f"requests without a reply: {unanswered}; replies of the wrong shape: {malformed}")
    print(f"service still running: {alive}; tracebacks in its log: {tracebacks}; exit {status}")
    print(f"slowest valid request: {slowest * 1000:.1f} ms")
    print(f"service memory (RSS): {rss_early} KiB after 1 000 cases, {rss_end} KiB at the end")
    ok = not unanswered and not malformed and alive and not tracebacks and slowest < 1.0
    return 0 if ok and status == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
