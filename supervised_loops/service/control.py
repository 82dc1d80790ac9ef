"""Steering a running tree from another shell: a local socket speaking JSON.

``supervised_loops.run(tree, control=...)`` serves this; ``supervised-loops
ctl`` is its client. The socket is a Unix domain socket in a directory only
the owner can enter (mode 0700), and the socket itself is mode 0600: on a
shared machine nobody else can connect. Requests are JSON, never pickle, and
every field is validated before anything is sent to the tree; a bad request
gets an error reply and leaves the tree untouched.

Protocol: one request per line, one reply per line, UTF-8 JSON:

    → {"command": "stop", "path": "app/poller"}
    ← {"ok": true, "result": {"message": "Stop", "iteration": 12, "next_iteration": null}}
    → {"command": "frobnicate"}
    ← {"ok": false, "error": {"type": "ValueError", "message": "'command' must be one of ..."}}

Paths are written as ``status`` shows them (``"demo/ingest/poller"``) or
relative to the root (``"ingest/poller"``).

Commands: ``status`` (path optional: the whole tree), ``stop``, ``cancel``,
``restart``, ``pause``, ``resume``, ``run-now``, ``change-interval`` (with
``seconds``/``minutes``/``hours`` numbers or ``time``: a list of
``"HH:MM[:SS]"`` strings, UTC, or objects ``{"time": "HH:MM", "tz":
"Europe/Berlin"}``). A request line longer than `MAX_REQUEST_BYTES`
(the newline not counted) is refused and the connection closed. Requests
must be UTF-8. The full protocol, with every error, is in ``docs/cli.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import enum
import json
import os
import stat
import tempfile
import zoneinfo
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from ..messages import (
    Ack,
    ActorStatus,
    Cancel,
    ChangeInterval,
    ControlMessage,
    GetStatus,
    Pause,
    Restart,
    Resume,
    RunNow,
    Stop,
)

__all__ = [
    "MAX_REPLY_BYTES",
    "MAX_REQUEST_BYTES",
    "ControlClient",
    "ControlServer",
    "default_socket_path",
    "parse_request",
    "to_json",
]

#: Longest request line accepted, in bytes.
MAX_REQUEST_BYTES = 64 * 1024

#: Longest reply line the client reads, in bytes: the status of a tree of
#: ten thousand loops is a few megabytes of JSON.
MAX_REPLY_BYTES = 64 * 1024 * 1024

#: Seconds a request may wait for the tree's acknowledgement.
REQUEST_TIMEOUT = 30.0


class Addressable(Protocol):
    """What the server needs of a tree: its name, and actors by path."""

    @property
    def name(self) -> str: ...

    def lookup(self, path: str) -> Any: ...

    def status(self) -> ActorStatus: ...


def default_socket_path(name: str) -> Path:
    """Where a tree named ``name`` listens unless told otherwise.

    ``$XDG_RUNTIME_DIR/supervised-loops/<name>.sock`` when that directory
    exists (it is private to the user), else a per-user directory under the
    system temporary directory.
    """
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        base = Path(runtime) / "supervised-loops"
    else:
        base = Path(tempfile.gettempdir()) / f"supervised-loops-{os.getuid()}"
    return base / f"{name}.sock"


_SIMPLE: dict[str, Callable[[], ControlMessage]] = {
    "stop": Stop,
    "cancel": Cancel,
    "restart": Restart,
    "pause": Pause,
    "resume": Resume,
    "run-now": RunNow,
    "status": GetStatus,
}
COMMANDS = (*_SIMPLE, "change-interval")


def _time_of_day(index: int, item: Any) -> dt.time:
    where = f"'time[{index}]'"
    tz: dt.tzinfo = dt.UTC
    if isinstance(item, Mapping):
        unknown = set(item) - {"time", "tz"}
        if unknown:
            raise ValueError(f"{where} has unknown fields {sorted(unknown)}")
        zone = item.get("tz")
        if not isinstance(zone, str):
            raise ValueError(f"{where} 'tz' must be a zone name (got {zone!r})")
        try:
            tz = zoneinfo.ZoneInfo(zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{where}: unknown time zone {zone!r}") from None
        item = item.get("time")
    if not isinstance(item, str):
        raise ValueError(f"{where} must be 'HH:MM[:SS]' (got {item!r})")
    try:
        parsed = dt.time.fromisoformat(item)
    except ValueError:
        raise ValueError(f"{where} must be 'HH:MM[:SS]' (got {item!r})") from None
    return parsed.replace(tzinfo=tz) if parsed.tzinfo is None else parsed


def parse_request(request: Any) -> tuple[str, ControlMessage]:
    """Validate a decoded request; return the target path and the message.

    Raises:
        ValueError: the request is not an object, names an unknown command,
            has unknown or ill-typed fields, or an invalid interval.
    """
    if not isinstance(request, dict):
        raise ValueError(f"a request must be a JSON object (got {type(request).__name__})")
    command = request.get("command")
    if command not in COMMANDS:
        raise ValueError(f"'command' must be one of {', '.join(COMMANDS)} (got {command!r})")
    path = request.get("path", "")
    if not isinstance(path, str):
        raise ValueError(f"'path' must be a string (got {path!r})")
    interval_fields = {"seconds", "minutes", "hours", "time"}
    allowed = {"command", "path"} | (interval_fields if command == "change-interval" else set())
    unknown = set(request) - allowed
    if unknown:
        raise ValueError(f"unknown fields for {command!r}: {', '.join(sorted(unknown))}")
    if command != "change-interval":
        return path, _SIMPLE[command]()
    parts: dict[str, Any] = {}
    for field in ("seconds", "minutes", "hours"):
        if field in request:
            value = request[field]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{field!r} must be a number (got {value!r})")
            parts[field] = value
    if "time" in request:
        times = request["time"]
        if not isinstance(times, list):
            times = [times]
        parts["time"] = [_time_of_day(i, item) for i, item in enumerate(times)]
    if not parts:
        raise ValueError("'change-interval' needs seconds, minutes, hours or time")
    try:
        return path, ChangeInterval(**parts)
    except TypeError as error:  # a mix of time and relative parts
        raise ValueError(str(error)) from None


def to_json(value: Any) -> Any:
    """Turn replies (Ack, ActorStatus, datetimes, enums) into JSON-ready values."""
    if isinstance(value, ActorStatus):
        data = {
            "name": value.name,
            "path": value.path,
            "kind": value.kind,
            "state": value.state.value,
            "current_loop": value.current_loop,
            "next_iteration": to_json(value.next_iteration),
            "failures": value.failures,
            "restarts": value.restarts,
            "last_error": value.last_error,
            "schedule": value.schedule,
            "children": [to_json(child) for child in value.children],
        }
        if value.lease is not None:  # only actors with a lease carry the key
            data["lease"] = value.lease
        return data
    if isinstance(value, Ack):
        return {
            "message": type(value.message).__name__,
            "iteration": value.iteration,
            "next_iteration": to_json(value.next_iteration),
        }
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    return value


def _error(error: BaseException) -> dict[str, Any]:
    return {"ok": False, "error": {"type": type(error).__name__, "message": str(error)}}


class ControlServer:
    """Serve control requests for ``tree`` on a Unix socket.

    Use as an async context manager, or call `start` / `close`.
    Each connection is handled on its own; a slow or broken client affects
    nobody else. Nothing a client sends can raise into the tree: replies
    carry the errors.
    """

    def __init__(
        self, tree: Addressable, path: Path | str, *, timeout: float = REQUEST_TIMEOUT
    ) -> None:
        self._tree = tree
        self._path = Path(path)
        self._timeout = timeout
        self._server: asyncio.Server | None = None
        self._closing = False
        self._connections: set[asyncio.Task[Any]] = set()

    @property
    def path(self) -> Path:
        """The socket's path."""
        return self._path

    async def start(self) -> None:
        """Create the private directory and the socket, and start serving.

        A socket file left behind by a process that was killed (nothing
        listens on it) is replaced.

        Raises:
            RuntimeError: another live server already listens on the path.
            FileExistsError: the path exists and is not a socket (it is
                never deleted).
            PermissionError: the directory exists and belongs to someone else
                or is open to others.
        """
        directory = self._path.parent
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = directory.stat()
        if info.st_uid != os.getuid() or stat.S_IMODE(info.st_mode) & 0o077:
            raise PermissionError(
                f"control directory {str(directory)!r} must belong to you with mode 0700"
            )
        if self._path.exists() or self._path.is_symlink():
            if not stat.S_ISSOCK(self._path.lstat().st_mode):
                # Never delete what is not a socket: the path is a mistake.
                raise FileExistsError(f"{str(self._path)!r} exists and is not a socket")
            if await _is_live(self._path):
                raise RuntimeError(f"a service already listens on {str(self._path)!r}")
            self._path.unlink()  # a stale socket left by a killed process
        old_umask = os.umask(0o177)  # the socket is created 0600, never briefly wider
        try:
            self._server = await asyncio.start_unix_server(
                self._serve, path=str(self._path), limit=MAX_REQUEST_BYTES + 1
            )
        finally:
            os.umask(old_umask)
        os.chmod(self._path, 0o600)

    async def close(self) -> None:
        """Stop serving, end open connections and remove the socket file."""
        server = self._server
        if server is None:
            return
        self._server = None
        self._closing = True  # a connection accepted but not yet served is hung up on
        # Stop accepting first, and let connections already accepted reach
        # _serve before the listener closes: on Python 3.11, closing it while
        # a connection is between accept and its transport leaks that
        # connection, and its client waits for a reply forever.
        event_loop = asyncio.get_running_loop()
        for listener in server.sockets:
            event_loop.remove_reader(listener.fileno())
        for _ in range(2):
            await asyncio.sleep(0)
        server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.wait(self._connections)
        await server.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self._path.unlink()

    async def __aenter__(self) -> ControlServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if self._closing:
            # Accepted just before close(), served only after it: without this
            # the client would wait forever on a server that no longer exists.
            writer.close()
            return
        self._connections.add(task)
        try:
            while True:
                try:
                    line = await reader.readuntil(b"\n")
                except asyncio.IncompleteReadError as end:
                    if not end.partial.strip():
                        return
                    line = end.partial
                except asyncio.LimitOverrunError:
                    reply = _error(ValueError(f"request longer than {MAX_REQUEST_BYTES} bytes"))
                    writer.write(json.dumps(reply).encode() + b"\n")
                    await writer.drain()
                    return
                if len(line.removesuffix(b"\n")) > MAX_REQUEST_BYTES:
                    reply = _error(ValueError(f"request longer than {MAX_REQUEST_BYTES} bytes"))
                    writer.write(json.dumps(reply).encode() + b"\n")
                    await writer.drain()
                    return
                reply = await self._answer(line)
                writer.write(json.dumps(reply).encode() + b"\n")
                await writer.drain()
        except ConnectionError:
            pass  # the client went away: nothing to answer
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line.decode("utf-8"))  # UTF-8 only, as documented
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            return _error(ValueError(f"malformed JSON: {error}"))
        try:
            path, message = parse_request(request)
        except ValueError as error:
            return _error(error)
        try:
            if isinstance(message, GetStatus) and path in ("", None):
                return {"ok": True, "result": to_json(self._tree.status())}
            actor = _resolve(self._tree, path)
            reply = await actor.ask(message, timeout=self._timeout)
        except Exception as error:  # every failure becomes a reply; none reaches the tree
            return _error(error)
        return {"ok": True, "result": to_json(reply)}


def _resolve(tree: Addressable, path: str) -> Any:
    """Find ``path`` as ``status`` shows it (from the root's name) or relative to the root."""
    name = tree.name
    if path == name:
        return tree.lookup("")
    try:
        return tree.lookup(path)
    except LookupError:
        if path.startswith(name + "/"):
            with contextlib.suppress(LookupError):
                return tree.lookup(path[len(name) + 1 :])
        raise  # the error names the path as the client wrote it


async def _is_live(path: Path) -> bool:
    try:
        _reader, writer = await asyncio.open_unix_connection(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    return True


class ControlClient:
    """Send requests to a `ControlServer` (what ``supervised-loops ctl`` uses).

    Args:
        path: the server's socket.
        timeout: seconds to wait for a reply; a little longer than the
            server's own `REQUEST_TIMEOUT`, so that a request the tree
            is slow to acknowledge comes back as the server's error reply.
    """

    def __init__(self, path: Path | str, *, timeout: float = REQUEST_TIMEOUT + 5.0) -> None:
        self._path = Path(path)
        self._timeout = timeout

    async def request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Send one request and return the decoded reply.

        Raises:
            ConnectionError: nothing listens on the socket, or the service
                hung up without replying.
            TimeoutError: no reply came within the timeout.
        """
        try:
            reader, writer = await asyncio.open_unix_connection(
                str(self._path), limit=MAX_REPLY_BYTES
            )
        except (FileNotFoundError, ConnectionRefusedError) as error:
            raise ConnectionError(f"no service listens on {str(self._path)!r}") from error
        try:
            writer.write(json.dumps(dict(request)).encode() + b"\n")
            await writer.drain()
            try:
                line = await asyncio.wait_for(reader.readline(), self._timeout)
            except TimeoutError:
                raise TimeoutError(
                    f"no reply from {str(self._path)!r} within {self._timeout} seconds"
                ) from None
        except ConnectionError as error:  # reset or broken pipe: it hung up
            raise ConnectionError("the service closed the connection without replying") from error
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        if not line:
            raise ConnectionError("the service closed the connection without replying")
        reply: dict[str, Any] = json.loads(line)
        return reply
