"""The control socket's server: every request answered, every connection bounded.

`ControlServer` listens on a Unix socket in a private directory and answers
requests of the protocol in `control_protocol`. What it guarantees:

* **Every request gets a reply.** A request that cannot be decoded or is
  invalid gets an error reply naming what is wrong; a failure of the tree or
  of the server itself (a bug) gets an error reply too, and an unexpected
  failure is logged with its traceback, once per kind and place. The one
  exception is a request line longer than `MAX_REQUEST_BYTES`: it gets its
  error reply, then the connection is closed, since the rest of the line
  cannot be told apart from the next request.
* **Bounded connections.** At most ``max_connections`` connections are open
  at once; at the cap, the connection idle the longest is closed to make
  room, and only when every connection is busy with a request is a new one
  refused (with a ``ServerBusy`` error reply). A connection that sends no
  complete request, or does not read its reply, for ``idle_timeout`` seconds
  is closed.
* **Accept errors do not flood the log**: the first of a burst (out of file
  descriptors, say) is logged, and accepting is retried every
  `ACCEPT_RETRY_SECONDS`; a burst ends after `ACCEPT_BURST_QUIET_SECONDS`
  without an error, and the next successful accept logs how many there were.
* **No process-wide side effects**: the socket is created in a directory only
  its owner can enter and made 0600 before it listens; the process umask is
  never changed, so other threads creating files are unaffected.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import socket
import stat
import traceback
from pathlib import Path
from typing import Any, Protocol

from .. import errors
from ..messages import ActorStatus, ControlMessage, GetStatus, State
from ..supervision.face import Supervisor
from .control_limits import (
    ControlLimits,
)
from .control_protocol import (
    MAX_REQUEST_BYTES,
    REQUEST_TIMEOUT,
    ROOT,
    CheckHealth,
    StreamEvents,
    decode_request,
    encode_reply,
    error_reply,
    parse_request,
    suggest_paths,
    to_json,
)
from .control_stream import stream_events
from .health import assess, health_json, significant_paths

__all__ = ["ACCEPT_RETRY_SECONDS", "ControlServer"]

logger = logging.getLogger("supervised_loops.control")

#: Seconds between two attempts to accept after an accept error.
ACCEPT_RETRY_SECONDS = 0.1

#: Seconds without an accept error that end a burst of them.
ACCEPT_BURST_QUIET_SECONDS = 5.0

#: Unexpected failures remembered so that each is logged once.
_MAX_REMEMBERED_FAILURES = 256

# The tree's own refusals: answered as errors, never logged as failures.
_EXPECTED = (
    errors.ActorNotRunning,
    errors.ActorStopped,
    errors.AskTimeout,
    errors.ChildNotFound,
    errors.MailboxFull,
    errors.UnhandledMessage,
    LookupError,
    ValueError,
)


class Addressable(Protocol):
    """What the server needs of a tree: its name, and actors by path."""

    @property
    def name(self) -> str: ...

    def lookup(self, path: str) -> Any: ...

    def status(self) -> ActorStatus: ...


class _Connection:
    """One client: since when it has been idle (None: busy with a request)."""

    __slots__ = ("idle_since",)

    def __init__(self, idle_since: float) -> None:
        self.idle_since: float | None = idle_since


class ControlServer:
    """Serve control requests for ``tree`` on a Unix socket.

    Use as an async context manager, or call `start` / `close`. Each
    connection is handled on its own; a slow or broken client affects
    nobody else. Nothing a client sends can raise into the tree: replies
    carry the errors.

    Args:
        tree: the root to steer.
        path: the socket's path; its directory is created 0700 if missing.
        timeout: seconds a request may wait for the tree's acknowledgement.
        limits: the connection bounds (`ControlLimits`).
    """

    def __init__(
        self,
        tree: Addressable,
        path: Path | str,
        *,
        timeout: float = REQUEST_TIMEOUT,
        limits: ControlLimits | None = None,
    ) -> None:
        self._tree = tree
        self._path = Path(path)
        self._timeout = timeout
        self._limits = limits if limits is not None else ControlLimits()
        self._listener: socket.socket | None = None
        self._accepting: asyncio.Task[None] | None = None
        self._connections: dict[asyncio.Task[None], _Connection] = {}
        self._failures_logged: set[tuple[str, str]] = set()

    @property
    def path(self) -> Path:
        """The socket's path."""
        return self._path

    @property
    def limits(self) -> ControlLimits:
        """The connection bounds in force."""
        return self._limits

    @property
    def connections(self) -> int:
        """How many connections are open now."""
        return len(self._connections)

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
            OSError: the socket cannot be created (a path too long, ...).

        Cancelled while it checks a socket file left behind, it has bound
        nothing.
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
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        bound = False
        try:
            # Nobody else can enter the directory, so the socket's mode right
            # after bind does not matter; it is 0600 before anyone may connect.
            listener.bind(str(self._path))
            bound = True
            os.chmod(self._path, 0o600)
            listener.listen(min(self._limits.max_connections, socket.SOMAXCONN))
            listener.setblocking(False)
        except BaseException:
            listener.close()
            if bound:  # ours: never a file another process just bound
                with contextlib.suppress(FileNotFoundError):
                    self._path.unlink()
            raise
        self._listener = listener
        self._accepting = asyncio.ensure_future(self._accept_all(listener))

    async def close(self) -> None:
        """Stop serving, end open connections and remove the socket file.

        A request being answered is cut off: its client sees the connection
        close without a reply. Cancelling ``close()`` stops the waiting for
        the connections to end; the listener is closed and the socket file
        removed all the same.
        """
        listener, accepting = self._listener, self._accepting
        if listener is None or accepting is None:
            return
        self._listener = self._accepting = None
        accepting.cancel()  # it accepts no connection after this
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        try:
            await asyncio.wait((accepting, *tasks))
        finally:
            listener.close()
            with contextlib.suppress(FileNotFoundError):
                self._path.unlink()

    async def __aenter__(self) -> ControlServer:
        """Start serving (see `start`)."""
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Stop serving (see `close`)."""
        await self.close()

    # -- connections ------------------------------------------------------------

    async def _accept_all(self, listener: socket.socket) -> None:
        event_loop = asyncio.get_running_loop()
        failed = 0  # accept errors in the current burst
        last_failure = -math.inf
        while True:
            try:
                connection, _ = await event_loop.sock_accept(listener)
            except OSError as error:
                now = event_loop.time()
                if now - last_failure > ACCEPT_BURST_QUIET_SECONDS:
                    failed = 0
                if not failed:
                    logger.error(
                        "control socket %s: cannot accept connections: %s (retrying every "
                        "%s s; logged once per burst)",
                        self._path,
                        error,
                        ACCEPT_RETRY_SECONDS,
                    )
                failed += 1
                last_failure = now
                await asyncio.sleep(ACCEPT_RETRY_SECONDS)
                continue
            if failed and event_loop.time() - last_failure > ACCEPT_BURST_QUIET_SECONDS:
                logger.warning(
                    "control socket %s: accepting again; %d accept errors in the last burst",
                    self._path,
                    failed,
                )
                failed = 0
            self._admit(connection)

    def _admit(self, connection: socket.socket) -> None:
        if len(self._connections) >= self._limits.max_connections:
            idle = [
                (c.idle_since, task)
                for task, c in self._connections.items()
                if c.idle_since is not None
            ]
            if not idle:
                _refuse_busy(connection, self._limits.max_connections)
                return
            _, oldest = min(idle, key=lambda pair: pair[0])
            del self._connections[oldest]
            oldest.cancel()  # an idle connection is owed no reply
        record = _Connection(asyncio.get_running_loop().time())
        task = asyncio.ensure_future(self._serve(connection, record))
        self._connections[task] = record

        def ended(done: asyncio.Task[None]) -> None:
            self._connections.pop(done, None)
            connection.close()  # a task cancelled before it began never closed it

        task.add_done_callback(ended)

    async def _serve(self, connection: socket.socket, record: _Connection) -> None:
        writer: asyncio.StreamWriter | None = None
        try:
            connection.setblocking(False)
            reader, writer = await asyncio.open_unix_connection(
                sock=connection, limit=MAX_REQUEST_BYTES + 1
            )
            await self._converse(reader, writer, record)
        except (ConnectionError, TimeoutError):
            pass  # the client went away, or stayed idle too long: nothing owed
        except Exception as error:  # a bug here must not end the server
            self._log_failure(error)
        finally:
            if writer is not None:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
            else:
                connection.close()

    async def _converse(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, record: _Connection
    ) -> None:
        event_loop = asyncio.get_running_loop()
        idle_timeout = self._limits.idle_timeout
        while True:
            record.idle_since = event_loop.time()
            last = False
            try:
                async with asyncio.timeout(idle_timeout):
                    line = await reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as end:
                if not end.partial.strip():
                    return
                line, last = end.partial, True
            except asyncio.LimitOverrunError:
                line, last = b"", True
            record.idle_since = None
            stream: tuple[Any, StreamEvents] | None = None
            if not line or len(line.removesuffix(b"\n")) > MAX_REQUEST_BYTES:
                reply = error_reply(ValueError(f"request longer than {MAX_REQUEST_BYTES} bytes"))
                last = True
            else:
                reply, stream = await self._respond(line)
            writer.write(encode_reply(reply))
            async with asyncio.timeout(idle_timeout):
                await writer.drain()
            if stream is not None:  # the connection is an event stream from now on
                await stream_events(stream[0], stream[1].types, reader, writer, idle_timeout)
                return
            if last:
                return

    # -- requests ---------------------------------------------------------------

    async def answer(self, line: bytes) -> dict[str, Any]:
        """The reply to one request line; never raises (but for cancellation).

        For an ``events`` request, the reply that opens the stream.
        """
        reply, _stream = await self._respond(line)
        return reply

    async def _respond(self, line: bytes) -> tuple[dict[str, Any], tuple[Any, StreamEvents] | None]:
        try:
            path, message = parse_request(decode_request(line))
        except ValueError as error:
            return error_reply(error), None
        if isinstance(message, StreamEvents):
            try:
                actor = self._resolve(path)
            except errors.ChildNotFound as error:
                return self._not_found(error, path), None
            opened = {"events": actor.path, "types": sorted(message.types)}
            return {"ok": True, "result": opened}, (actor, message)
        return await self._reply(path, message), None

    async def _reply(self, path: str, message: ControlMessage | CheckHealth) -> dict[str, Any]:
        try:
            return {"ok": True, "result": await self._dispatch(path, message)}
        except errors.ChildNotFound as error:
            return self._not_found(error, path)
        except _EXPECTED as error:
            return error_reply(error)
        except Exception as error:  # every failure becomes a reply; none reaches the tree
            self._log_failure(error)
            return error_reply(error)

    async def _dispatch(self, path: str, message: ControlMessage | CheckHealth) -> Any:
        if isinstance(message, CheckHealth):
            return self._health(path)
        if isinstance(message, GetStatus) and path in (ROOT, self._tree.name):
            return to_json(self._tree.status())
        actor = self._resolve(path)
        return to_json(await actor.ask(message, timeout=self._timeout))

    def _health(self, path: str) -> dict[str, Any]:
        # One decision for every probe (service.health.assess, which the
        # HTTP /healthz and /readyz also answer with), on the snapshot of
        # the path asked about.
        tree = self._tree
        tree_status = tree.status()
        root = path in (ROOT, tree.name)
        status = tree_status if root else self._resolve(path).status()
        started = tree_status.state not in (State.IDLE, State.STARTING)
        significant = significant_paths(tree) if isinstance(tree, Supervisor) else frozenset()
        return health_json(assess(status, started=started, significant=significant))

    def _resolve(self, path: str) -> Any:
        """Find ``path`` as ``status`` shows it (from the root's name) or relative to the root.

        ``path`` is well formed (`check_path` passed): no empty name, so it
        never falls back to the root by accident.
        """
        name = self._tree.name
        if path in (ROOT, name):
            return self._tree.lookup("")
        try:
            return self._tree.lookup(path)
        except LookupError:
            if path.startswith(name + "/"):
                with contextlib.suppress(LookupError):
                    return self._tree.lookup(path[len(name) + 1 :])
            raise  # the error names the path as the client wrote it

    def _not_found(self, error: errors.ChildNotFound, path: str) -> dict[str, Any]:
        reply = error_reply(error)
        try:
            near = suggest_paths(self._tree.status(), path)
        except Exception:  # a suggestion is a courtesy; the error stands without it
            near = []
        if near:
            reply["error"]["message"] += "; did you mean " + " or ".join(map(repr, near)) + "?"
        return reply

    def _log_failure(self, error: BaseException) -> None:
        frames = traceback.extract_tb(error.__traceback__)
        where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
        key = (type(error).__name__, where)
        if key in self._failures_logged:
            return
        if len(self._failures_logged) < _MAX_REMEMBERED_FAILURES:
            self._failures_logged.add(key)
        logger.error(
            "control socket %s: unexpected failure answering a request (answered with an "
            "error reply; logged once)",
            self._path,
            exc_info=error,
        )


def _refuse_busy(connection: socket.socket, cap: int) -> None:
    reply = error_reply(
        RuntimeError(f"the service has {cap} connections busy with requests; try again"),
        kind="ServerBusy",
    )
    with contextlib.suppress(OSError):
        connection.setblocking(False)
        connection.send(encode_reply(reply))
    connection.close()


async def _is_live(path: Path) -> bool:
    try:
        _reader, writer = await asyncio.open_unix_connection(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    return True
