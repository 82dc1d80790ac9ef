"""``run(tree)``: a tree as a service, from start to exit status.

``run`` starts the tree, serves the control socket if asked, and waits until
either the tree ends by itself or the process gets SIGINT/SIGTERM (a signal
before the tree has started means it is never started: status 0). On a
signal it shuts the tree down in order (reverse start order, each child
``Stop`` → grace → ``Cancel`` → hard limit), within ``shutdown_timeout``
seconds in total, counted from the signal; a second signal, or the timeout,
cancels whatever is still running at once (one pass over the whole tree:
see docs/supervision.md, "Shutdown"), and the clean-ups (``after_loop``, the
flush) still run, each to its hard limit; a third signal cuts short the
clean-ups still running.

Exit status: ``run`` returns normally after a clean stop (exit status 0) and
raises ``SystemExit(1)`` otherwise, once the reason has been logged: an
escalated failure (with its traceback), a tree that failed to start, or a
*forced* shutdown (a second signal, or ``shutdown_timeout`` running out,
while the tree was still shutting down: what still ran was cancelled, so the
stop was not clean), or an ``after_loop`` cut short by a child's hard
shutdown limit or a third signal (a ``CutShort`` event). ``serve`` is the same
without the exit, for programs that embed the tree in a larger asyncio
application.

A single actor (a Loop, a worker) is run inside a one-child Supervisor named
after it: the child is transient and significant, so the program ends with
status 0 when the actor ends by itself (a Loop's ``count`` reached, a
worker's coroutine returned, a ``ctl stop``), and a failure is restarted by
the supervisor's default restart intensity before it ends the program with
status 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import _validate
from ..core.actor import Actor
from ..messages import Cancel, Stop
from ..supervision.face import Supervisor, child
from .control import ControlLimits, ControlServer, default_socket_path

__all__ = ["run", "serve"]

logger = logging.getLogger("supervised_loops")

#: Seconds a signalled shutdown may take before everything is cancelled.
DEFAULT_SHUTDOWN_TIMEOUT = 30.0


def as_tree(target: Actor) -> Supervisor:
    """Return ``target`` if it is a Supervisor, else a one-child Supervisor around it.

    The wrapper is named after the actor, which is its only child, transient
    and significant (``auto_shutdown="any_significant"``): the tree ends
    normally when the actor ends by itself, as a standalone Loop would,
    instead of restarting a finished Loop until the restart intensity fails
    the tree.

    Raises:
        TypeError: ``target`` is not an actor.
    """
    if isinstance(target, Supervisor):
        return target
    if not isinstance(target, Actor):
        raise TypeError(f"'tree' must be a Supervisor, a Loop or another actor (got {target!r})")
    return Supervisor(
        child(target, restart="transient", significant=True),
        auto_shutdown="any_significant",
        name=target.name,
    )


async def serve(
    tree: Actor,
    *,
    control: bool | str | Path = False,
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
    handle_signals: bool = True,
    on_started: Callable[[Supervisor], Any] | None = None,
    control_limits: ControlLimits | None = None,
    held_signals: list[int] | None = None,
    metrics_port: int | None = None,
    dashboard: str | None = None,
    dashboard_control: bool = False,
    dashboard_token: str | None = None,
) -> int:
    """Run ``tree`` until it ends or a signal arrives; return the exit status.

    Args:
        tree: a Supervisor, or a single actor (wrapped in one).
        control: serve the control socket: ``True`` at
            `default_socket_path`, or a path.
        shutdown_timeout: seconds the graceful shutdown may take in total,
            from the signal.
        handle_signals: install SIGINT/SIGTERM handlers (main thread only);
            the handlers found are put back when ``serve`` returns.
        on_started: called with the tree once it has started (e.g. to show it).
        control_limits: the control socket's connection bounds (idle
            timeout, connection cap); the defaults of `ControlLimits`.
        held_signals: signals received before ``serve`` could handle them
            (a list that the caller's own handler appends to until ``serve``
            installs its handlers): each counts as if it arrived as ``serve``
            began. The console command passes those it held while loading.
        metrics_port: serve ``/metrics``, ``/healthz`` and ``/readyz`` on
            this TCP port, from before the start to the end (the
            ``prometheus`` extra; see docs/observability.md); 0 picks a port.
        dashboard: serve the web dashboard at ``"HOST:PORT"`` (the
            ``dashboard`` extra; see ``docs/dashboard.md``); its address is logged.
        dashboard_control: let the dashboard send control commands (needs
            ``dashboard_token``).
        dashboard_token: the secret the dashboard asks for (control, and any
            bind that is not loopback).

    Returns:
        0 after a clean stop (or an end of the tree by itself); 1 after an
        escalated failure, a failed start, a forced shutdown or an
        ``after_loop`` cut short by a hard limit (the reason is logged here,
        a failure with its traceback).

    Raises:
        RuntimeError, OSError: the control socket cannot be served (another
            live service listens on it, its directory is not private, ...);
            nothing has been started then.
        OSError: the metrics port or the dashboard's address cannot be
            bound; nothing has been started then.
        ImportError: ``metrics_port`` is set and prometheus_client is
            missing, or ``dashboard`` is set and its extra is missing.
        TypeError, ValueError: a bad dashboard address, or a non-loopback
            one or control without a token.

    A signal that arrives before the tree starts (while the control socket
    is bound) means the tree is never started: ``serve`` returns 0. One that
    arrives while the tree starts takes effect once the start returns; a
    second one cancels the start. If ``serve`` itself is cancelled, the tree
    is cancelled and the cancellation propagates.
    """
    shutdown_timeout = _validate.seconds("shutdown_timeout", shutdown_timeout)
    if not isinstance(control, bool | str | os.PathLike) or control == "":
        _validate.type_error("control", "a bool or a non-empty path", control)
    _validate.boolean("handle_signals", handle_signals)
    _validate.optional_callable("on_started", on_started)
    root = as_tree(tree)
    event_loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    signals_seen: list[int] = []
    forced = False

    def force(*, cut: bool = False) -> None:
        # Cancel whatever still runs, in one pass; only a tree still running
        # makes the stop unclean (a signal racing the tree's own end changes
        # nothing). The clean-ups (after_loop) run on to their hard limits,
        # unless ``cut``: then those in progress are cut short at once too.
        nonlocal forced
        if root.is_running():
            forced = True
            if cut:
                root._force_cancel()
            else:
                root._cancel_subtree()

    def too_long() -> None:
        if root.is_running():
            logger.error(
                "shutdown of %r took longer than %s seconds: cancelling",
                root.name,
                shutdown_timeout,
            )
            force()

    budget: list[asyncio.TimerHandle] = []
    tree_started = False

    def begin_shutdown(since: float | None = None) -> None:
        # Stop goes out and the budget counts from the signal itself: on a
        # saturated event loop, this task's next step comes cycles later. A
        # timer, not wait_for around stop(): the forced pass is made the
        # moment the budget is spent, not once wait_for has unwound.
        if tree_started and not budget and root.is_running():
            began = event_loop.time() if since is None else since
            budget.append(event_loop.call_at(began + shutdown_timeout, too_long))
            root.tell(Stop())

    def on_signal(signum: int, at: float | None = None) -> None:
        signals_seen.append(signum)
        if len(signals_seen) == 1:
            logger.warning("%s received: shutting down %r", signal.Signals(signum).name, root.name)
            stop_requested.set()
            begin_shutdown(at)
        elif len(signals_seen) == 2:
            logger.warning(
                "second signal: cancelling %r now (clean-ups run to their hard limits; "
                "a third signal cuts them short)",
                root.name,
            )
            force()
        else:
            logger.warning("third signal: cutting short every clean-up of %r", root.name)
            force(cut=True)

    def handler(signum: int, _frame: types.FrameType | None) -> None:
        # A Python-level handler, not add_signal_handler: removing that one
        # resets the default handlers, and a signal in the instant before
        # the caller's own came back would kill the process.
        # When it arrived, not when the event loop gets to it (a cycle later).
        event_loop.call_soon_threadsafe(on_signal, signum, event_loop.time())

    previous: dict[int, Any] = {}
    if handle_signals:
        for signum in (int(signal.SIGINT), int(signal.SIGTERM)):
            previous[signum] = signal.signal(signum, handler)
    for signum in list(held_signals or ()):
        on_signal(signum)
    server: ControlServer | None = None
    extras = contextlib.AsyncExitStack()
    web: Any = None
    ended: asyncio.Future[None] | None = None
    try:
        if control:
            # Before the tree: a socket already in use fails the program
            # before it does anything (two copies of one service, say).
            path = default_socket_path(root.name) if control is True else Path(control)
            server = ControlServer(root, path, limits=control_limits)
            await server.start()
            logger.info("control socket: %s", path)
        if metrics_port is not None:
            from ..telemetry.server import serve_metrics  # the extra, only when asked for

            exposed = await extras.enter_async_context(serve_metrics(root, metrics_port))
            logger.info("metrics and health probes: http://%s:%d", exposed.host, exposed.port)
        if dashboard is not None:
            web = _dashboard(root, dashboard, dashboard_control, dashboard_token)
            await web.start()
            logger.info("dashboard: %s", web.url)
        if stop_requested.is_set():
            logger.warning("%r was not started", root.name)
            return 0
        try:
            await root.start()
            tree_started = True
        except Exception as error:
            logger.error("%r failed to start: %s", root.name, error, exc_info=error)
            return 1
        if on_started is not None:
            on_started(root)
        ended = asyncio.ensure_future(root.wait())
        stopping = asyncio.ensure_future(stop_requested.wait())
        try:
            await asyncio.wait((ended, stopping), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not ended.done():
            begin_shutdown()  # if the signal came while the tree was starting
            await root.stop()
            await asyncio.wait((ended,))
        try:
            ended.result()
        except Exception as error:
            logger.error("%r failed: %s", root.name, error, exc_info=error)
            return 1
        if forced:
            logger.error("%r was cancelled before its shutdown ended", root.name)
            return 1
        cut = root._cut_short_count()
        if cut:
            logger.error(
                "%r: %d clean-up(s) (after_loop) cut short by a hard shutdown limit", root.name, cut
            )
            return 1
        return 0
    except asyncio.CancelledError:
        if root.is_running():
            root.tell(Cancel())
        raise
    finally:
        for timer in budget:
            timer.cancel()
        if ended is not None and not ended.done():
            ended.cancel()
        if server is not None:
            await server.close()
        await extras.aclose()
        if web is not None:
            await web.close()
        for signum, handler_found in previous.items():
            signal.signal(signum, handler_found)
        if root.is_running():
            with contextlib.suppress(Exception):
                await root.stop()


def _dashboard(root: Supervisor, address: str, control: bool, token: str | None) -> Any:
    try:
        from .dashboard import Dashboard  # the optional extra: imported only when asked for
    except ImportError as error:
        raise RuntimeError(
            f"the dashboard needs the 'dashboard' extra: pip install 'supervised-loops[dashboard]'"
            f" ({error})"
        ) from error
    return Dashboard(root, address, control=control, token=token)


def run(
    tree: Actor,
    *,
    control: bool | str | Path = False,
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
    on_started: Callable[[Supervisor], Any] | None = None,
    control_limits: ControlLimits | None = None,
    metrics_port: int | None = None,
    dashboard: str | None = None,
    dashboard_control: bool = False,
    dashboard_token: str | None = None,
) -> None:
    """Run ``tree`` as the program: until it ends or SIGINT/SIGTERM.

    Returns after a clean stop; after an escalated failure, a failed start
    or a forced shutdown, logs it and raises ``SystemExit(1)``. See
    `serve` for the arguments.

    Raises:
        SystemExit: with status 1 when the tree did not end cleanly.
        RuntimeError, OSError: the control socket cannot be served.
        RuntimeError: called from inside a running event loop (``run``
            starts its own; there, ``await serve(tree)`` instead).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass  # no loop running: the normal case
    else:
        raise RuntimeError(
            "run() starts its own event loop and cannot be called from a running one; "
            "inside async code, use 'await supervised_loops.serve(tree)'"
        )
    status = asyncio.run(
        serve(
            tree,
            control=control,
            shutdown_timeout=shutdown_timeout,
            on_started=on_started,
            control_limits=control_limits,
            metrics_port=metrics_port,
            dashboard=dashboard,
            dashboard_control=dashboard_control,
            dashboard_token=dashboard_token,
        )
    )
    if status:
        raise SystemExit(status)
