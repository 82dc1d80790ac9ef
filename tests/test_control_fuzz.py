"""Fuzzing the control protocol: whatever arrives, a JSON reply comes back.

Hypothesis writes request lines (random bytes, truncated and deeply nested
JSON, huge numbers, wrong types in every field, odd paths and zones) and
sends each on its own connection to a real server, whose tree runs in a
thread. Every line under the size limit must get one reply, a JSON object
of the documented shape, and the server must keep answering a valid
request. ``bench/fuzz_control.py`` runs the long version.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_control import App, short_dir

from supervised_loops.service.control import COMMANDS, MAX_REQUEST_BYTES, ControlServer

__all__ = ["short_dir"]  # the fixture, shared with test_control

PATHS = (
    st.sampled_from(
        [
            "app",
            "app/ingest",
            "ingest/poller",
            "app/ingest/writer",
            "/",
            "",
            "app/",
            "a//b",
            "poller",
            "nope",
            "x" * 2000,
            "ingest/poller/deeper",
            "\x00",
            "é/ü",
        ]
    )
    | st.text(max_size=20)
    | st.integers()
    | st.none()
    | st.lists(st.text(max_size=3), max_size=3)
)
NUMBERS = (
    st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([10**4000, -(10**4000), 0, 1e308, True, False, None, "5", [], {}])
)
ZONES = (
    st.sampled_from(
        [
            "Europe",
            "Europe/Berlin",
            "UTC",
            "Etc/GMT+5",
            "../etc/passwd",
            "x" * 300,
            "Europe/",
            "/etc/passwd",
            "zone.tab",
            "tzdata.zi",
            "America",
            "a\x00b",
            "",
            "Europe//Berlin",
        ]
    )
    | st.text(max_size=40)
    | st.integers()
    | st.none()
)
CLOCKS = (
    st.sampled_from(["09:30", "25:00", "", "9", "09:30:00+02:00", "23:59:59.999999"])
    | (st.text(max_size=12))
    | st.integers()
    | st.none()
)
TIME_ITEMS = (
    CLOCKS
    | st.fixed_dictionaries({"time": CLOCKS, "tz": ZONES})
    | st.dictionaries(st.text(max_size=5), CLOCKS, max_size=3)
)
REQUESTS = st.fixed_dictionaries(
    {},
    optional={
        "command": st.sampled_from(COMMANDS) | st.text(max_size=10) | st.integers() | st.none(),
        "path": PATHS,
        "seconds": NUMBERS,
        "minutes": NUMBERS,
        "hours": NUMBERS,
        "time": TIME_ITEMS | st.lists(TIME_ITEMS, max_size=4),
        "extra": st.integers(),
    },
)


def encoded(request: dict[str, Any]) -> bytes:
    return json.dumps(request).encode()


LINES = st.one_of(
    REQUESTS.map(encoded),
    st.binary(max_size=300).map(lambda data: data.replace(b"\n", b" ")),
    st.tuples(REQUESTS.map(encoded), st.integers(0, 400)).map(lambda pair: pair[0][: pair[1]]),
    st.tuples(
        st.sampled_from([b"[", b'{"a":', b'{"command": "stop", "path": [']), st.integers(1, 60_000)
    ).map(lambda pair: pair[0] * pair[1]),
    st.integers(4_000, 6_000).map(
        lambda digits: (
            b'{"command": "change-interval", "path": "app", "seconds": ' + b"9" * digits + b"}"
        )
    ),
).filter(lambda line: len(line) <= MAX_REQUEST_BYTES)


class Served:
    """The App tree and its control server, in a thread of their own."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.app = App()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with self.app.tree, ControlServer(self.app.tree, self.path):
            self._ready.set()
            await self._stop.wait()

    def __enter__(self) -> Served:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


def exchange(path: Path, line: bytes) -> Any:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(5)
        client.connect(str(path))
        client.sendall(line + b"\n")
        with client.makefile("rb") as replies:
            reply = replies.readline()
    assert reply.endswith(b"\n"), f"no reply to {line[:100]!r}"
    return json.loads(reply)


@pytest.fixture
def served(short_dir: Path) -> Iterator[Served]:
    with Served(short_dir / "fuzz.sock") as service:
        yield service


def check_shape(reply: Any) -> None:
    assert isinstance(reply, dict)
    assert isinstance(reply["ok"], bool)
    if reply["ok"]:
        assert set(reply) == {"ok", "result"}
    else:
        assert set(reply) == {"ok", "error"}
        assert isinstance(reply["error"]["type"], str)
        assert isinstance(reply["error"]["message"], str)
        assert len(reply["error"]["message"]) < 1_000  # the bad value is cut short


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(line=LINES)
def test_every_fuzzed_request_gets_one_json_reply(served: Served, line: bytes) -> None:
    check_shape(exchange(served.path, line))
    # The server still answers a valid request at once.
    assert exchange(served.path, b'{"command": "status", "path": "app/ingest"}')["ok"]
