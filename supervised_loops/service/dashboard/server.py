"""The dashboard's HTTP server: the page, its data, its live stream, control.

Endpoints (nothing else is served; every other path is ``404``, every other
method ``405``):

* ``GET /`` and ``GET /static/<file>``: the page and its script and style,
  shipped in the package (no CDN).
* ``GET /api/state``: the whole tree as rows, and the recent events (JSON).
* ``GET /api/events``: the live stream (server-sent events): ``hello``
  (settings and recent events), ``rows`` (what changed, periodically),
  ``event`` (a lifecycle event and the rows of its actor, at once).
* ``GET /api/traceback?path=P``: the traceback of ``P``'s last failed iteration.
* ``POST /api/control``: one control request, JSON, exactly as the control
  socket takes it (see ``docs/cli.md``), answered by the same function.

It runs on the service's own event loop (aiohttp, no thread). Each browser
gets its own events subscription, bounded and dropping its oldest events
when the browser falls behind, like any subscriber: a slow or stalled
browser never makes an actor wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from importlib import resources
from typing import Any

from aiohttp import web

from ... import _validate
from ...clock import get_clock
from ...core.actor import Actor
from ...events import EventsDropped, Subscription
from ...loops import recent
from ...loops.face import Loop
from ...loops.recent import RecentIterations
from ...messages import ActorStatus
from ...supervision.face import Supervisor
from ..control import MAX_REQUEST_BYTES, ControlServer, default_socket_path
from ..control_protocol import decode_request, error_reply
from .access import COOKIE, Access, parse_address
from .history import History, event_to_json
from .snapshot import Sent, View, rows_of
from .watch import Watch

__all__ = ["DEFAULT_ADDRESS", "Dashboard"]

logger = logging.getLogger("supervised_loops")

#: Where the dashboard listens unless told otherwise.
DEFAULT_ADDRESS = "127.0.0.1:8080"

#: Events a browser may fall behind by before its oldest are dropped.
MAX_PENDING_EVENTS = 1000

#: Live streams open at once; more are refused (503). Each is an events
#: subscriber, and every event is queued for each: a bound on what browsers
#: can add to the actors' publishing.
MAX_STREAMS = 32

_STATIC = {
    "index.html": "text/html",
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
}

_HEADERS = {
    # Scripts and styles from this server only; no framing; no token in referrers.
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _asset(name: str) -> bytes:
    return resources.files(__package__).joinpath("static", name).read_bytes()


class Dashboard:
    """The web dashboard of a running ``tree``.

    Args:
        tree: the root Supervisor.
        address: ``"HOST:PORT"`` (port 0: any free port; see `url`).
        control: serve control requests (needs ``token``).
        token: the secret a request must carry for control, and for
            everything when ``address`` is not loopback.
        interval: seconds between two updates of the page, at least
            (longer for huge trees: see `supervised_loops.service.dashboard.snapshot`).

    Raises:
        TypeError, ValueError: a bad address, a non-loopback address or
            control without a token (see `supervised_loops.service.dashboard.access`),
            a ``tree`` that is not a Supervisor, an ``interval`` not > 0.
    """

    def __init__(
        self,
        tree: Supervisor,
        address: str = DEFAULT_ADDRESS,
        *,
        control: bool = False,
        token: str | None = None,
        interval: float = 1.0,
    ) -> None:
        if not isinstance(tree, Supervisor):
            raise TypeError(f"'tree' must be a Supervisor (got {tree!r})")
        interval = _validate.seconds("interval", interval, allow_zero=False)
        self._host, self._port = parse_address(address)
        self._access = Access(self._host, token=token, control=control)
        self._tree = tree
        self._limits_cache: dict[str, tuple[int, float] | None] = {}
        self.history = History(self._limits)
        self._interval = interval
        self._runner: web.AppRunner | None = None
        self._collector: asyncio.Task[None] | None = None
        self._streams: set[asyncio.Task[Any]] = set()
        self._url = ""
        self._recording = False
        self._watch = Watch()
        # Never started: only its request handling is used (see _control).
        self._commands = ControlServer(tree, default_socket_path(tree.name))

    @property
    def url(self) -> str:
        """The page's address once started (``http://127.0.0.1:8080/``)."""
        return self._url

    async def start(self) -> None:
        """Listen, and start collecting history.

        Raises:
            OSError: the address cannot be bound (in use, not local, ...);
                nothing is left running then.

        Cancelled while binding, it leaves nothing running either.
        """
        app = web.Application(middlewares=[self._guard], client_max_size=MAX_REQUEST_BYTES)
        app.router.add_get("/", self._index)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/api/state", self._state)
        app.router.add_get("/api/events", self._events)
        app.router.add_get("/api/traceback", self._traceback)
        app.router.add_post("/api/control", self._control)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self._url = f"http://{f'[{host}]' if ':' in host else host}:{port}/"
        self.history.seed(self._tree.status())  # once; events keep it current after
        # Loops get rings when a browser shows them (and when they fail).
        recent.start_recording()
        self._recording = True
        # Subscribed now, not when the task first runs: nothing published
        # after start() returns is missed.
        self._collector = asyncio.ensure_future(
            self._collect(self._tree.events(max_pending=MAX_PENDING_EVENTS))
        )

    async def close(self) -> None:
        """Stop serving: end the live streams, stop collecting, close the socket.

        The history is taken out of the instrumentation hook first. Cancelled
        while the streams end, the socket may stay open until the event loop
        closes; calling ``close`` again finishes nothing more (it is done once).
        """
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._stop_recording()
        tasks = [*self._streams, *([self._collector] if self._collector else [])]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        await runner.cleanup()

    async def __aenter__(self) -> Dashboard:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def _stop_recording(self) -> None:
        """Stop recording, and take the rings of the tree's loops.

        Another dashboard on the same tree gives the loops it shows their
        rings again at its next update (their charts start again).
        """
        if not self._recording:
            return
        self._recording = False
        self._watch.release()
        recent.stop_recording()
        for loop in self._loops(self._tree.status()):
            recent.detach(loop)

    # -- what the tree knows ------------------------------------------------

    def _loops(self, status: ActorStatus) -> list[Loop[Any]]:
        """The loops of the tree ``status`` describes (those still in it)."""
        found: list[Loop[Any]] = []
        stack = [status]
        while stack:
            current = stack.pop()
            stack.extend(current.children)
            if current.kind == "loop":
                with contextlib.suppress(LookupError):
                    actor = self._actor(current.path)
                    if isinstance(actor, Loop):
                        found.append(actor)
        return found

    def _recent_of(self, path: str) -> RecentIterations | None:
        try:
            return recent.of(self._actor(path))
        except LookupError:
            return None

    def _actor(self, path: str) -> Actor:
        root = self._tree.name
        if path == root:
            return self._tree
        return self._tree.lookup(path.removeprefix(root + "/"))

    def _limits(self, path: str) -> tuple[int, float] | None:
        if path in self._limits_cache:
            return self._limits_cache[path]
        found: tuple[int, float] | None = None
        with contextlib.suppress(LookupError):
            actor = self._actor(path)
            if isinstance(actor, Supervisor):
                found = (actor.max_restarts, actor.max_seconds)
        self._limits_cache[path] = found
        return found

    async def _collect(self, events: Subscription) -> None:
        async with events:
            async for event in events:
                self.history.record(event)

    def _settings(self) -> dict[str, Any]:
        return {"root": self._tree.path, "control": self._access.control}

    # -- HTTP ---------------------------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        header = request.headers.get("Authorization", "")
        bearer = header[7:] if header.startswith("Bearer ") else None
        refused = self._access.check(
            host_header=request.headers.get("Host"),
            bearer=bearer,
            query=request.query.get("token"),
            cookie=request.cookies.get(COOKIE),
            control=request.path == "/api/control",
        )
        if refused is not None:
            status, reason = refused
            extra = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
            return web.json_response(
                {"ok": False, "error": {"type": "PermissionError", "message": reason}},
                status=status,
                headers={**_HEADERS, **extra},
            )
        response: web.StreamResponse = await handler(request)
        if not response.prepared:
            response.headers.update(_HEADERS)
        return response

    async def _index(self, request: web.Request) -> web.Response:
        response = web.Response(body=_asset("index.html"), content_type="text/html")
        given = request.query.get("token")
        if given is not None and self._access.token_matches(given):
            response.set_cookie(COOKIE, given, httponly=True, samesite="Strict", path="/")
        return response

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in _STATIC:  # a fixed list: no path is ever built from the request
            raise web.HTTPNotFound()
        return web.Response(body=_asset(name), content_type=_STATIC[name], charset="utf-8")

    async def _state(self, request: web.Request) -> web.Response:
        # The whole tree: a full status, for scripts; the page uses the stream.
        rows = rows_of(self._tree.status(), self.history, self._limits, self._recent_of)
        body = {**self._settings(), "rows": rows, "events": list(self.history.events)}
        return web.json_response(body)

    async def _traceback(self, request: web.Request) -> web.Response:
        path = request.query.get("path", "")
        loop = self._recent_of(path)
        text = None if loop is None else loop.traceback
        return web.json_response(
            {
                "path": path,
                "traceback": text,
                "iteration": None if loop is None else loop.traceback_iteration,
            }
        )

    async def _control(self, request: web.Request) -> web.Response:
        # The body is one request of the control protocol, answered by the
        # control server's own code: one copy of the parsing, the checks and
        # the replies, whichever way a command arrives.
        body = await request.read()
        with contextlib.suppress(ValueError):  # a bad request: answer() says why
            decoded = decode_request(body)
            if isinstance(decoded, dict) and decoded.get("command") == "events":
                refused = ValueError("'events' is a stream: the page has its own, GET /api/events")
                return web.json_response(error_reply(refused))
        return web.json_response(await self._commands.answer(body))

    async def _events(self, request: web.Request) -> web.StreamResponse:
        if len(self._streams) >= MAX_STREAMS:
            return web.json_response(
                error_reply(RuntimeError(f"{MAX_STREAMS} live streams are open; try again later")),
                status=503,
            )
        task = asyncio.current_task()
        assert task is not None
        self._streams.add(task)
        response = web.StreamResponse(
            headers={**_HEADERS, "Content-Type": "text/event-stream", "X-Accel-Buffering": "no"}
        )
        try:
            await response.prepare(request)
            await self._stream(request, response)
        except (ConnectionError, asyncio.CancelledError):
            pass  # the browser went away, or the dashboard closes
        finally:
            self._streams.discard(task)
        return response

    async def _stream(self, request: web.Request, response: web.StreamResponse) -> None:
        event_loop = asyncio.get_running_loop()
        view = View(
            self._tree,
            self.history,
            self._limits,
            self._watch,
            opened=_paths(request.query.get("open")),
            closed=_paths(request.query.get("closed")),
            interval=self._interval,
        )
        sent = Sent(self._recent_of)

        async def send(kind: str, data: Any) -> None:
            text = json.dumps(data, separators=(",", ":"))
            await response.write(f"event: {kind}\ndata: {text}\n\n".encode())

        async with self._tree.events(max_pending=MAX_PENDING_EVENTS) as events:
            await send("hello", {**self._settings(), "events": list(self.history.events)})
            due = event_loop.time()
            while True:
                wait = due - event_loop.time()
                if wait <= 0:
                    changes = sent.changes(view.rows(), full=True)
                    now = get_clock().wall().timestamp()
                    await send("rows", {**changes, "period": view.period, "now": now})
                    due = event_loop.time() + view.period
                    continue
                try:
                    event = await asyncio.wait_for(anext(events), wait)
                except TimeoutError:
                    continue
                except StopAsyncIteration:
                    return
                if isinstance(event, EventsDropped):
                    sent.forget()  # the next rows message carries every visible row
                    due = event_loop.time()
                rows: dict[str, Any] = {}
                with contextlib.suppress(LookupError):
                    rows = sent.changes(view.row(self._actor(event.path)))["rows"]
                await send("event", {"event": event_to_json(event), "rows": rows})


#: Most paths a browser may name as opened or closed.
MAX_VIEW_PATHS = 1000


def _paths(text: str | None) -> list[str]:
    """The comma-separated paths of a query parameter (bounded: it is a request's)."""
    if not text:
        return []
    return text.split(",", MAX_VIEW_PATHS)[:MAX_VIEW_PATHS]
