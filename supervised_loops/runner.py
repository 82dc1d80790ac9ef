"""``run(tree)``: a tree as a service, from start to exit status.

``run`` starts the tree, serves the control socket if asked, and waits until
either the tree ends by itself or the process gets SIGINT/SIGTERM. On a
signal it shuts the tree down in order (reverse start order, each child
``Stop`` → grace → ``Cancel`` → hard limit), within ``shutdown_timeout``
seconds in total; a second signal, or the timeout, cancels whatever is
still running at once.

Exit status: ``run`` returns normally after a clean stop (exit status 0) and
raises ``SystemExit(1)`` after an escalated failure, once the failure has
been logged with its traceback. ``serve`` is the same without the exit, for
programs that embed the tree in a larger asyncio application.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import _validate
from .actor import Actor
from .control import ControlServer, default_socket_path
from .messages import Cancel
from .supervisor import Supervisor, child

__all__ = ["run", "serve"]

logger = logging.getLogger("supervised_loops")

#: Seconds a signalled shutdown may take before everything is cancelled.
DEFAULT_SHUTDOWN_TIMEOUT = 30.0


def as_tree(target: Actor) -> Supervisor:
    """Return ``target`` if it is a Supervisor, else a one-child Supervisor around it.

    Raises:
        TypeError: ``target`` is not an actor.
    """
    if isinstance(target, Supervisor):
        return target
    if not isinstance(target, Actor):
        raise TypeError(f"'tree' must be a Supervisor, a Loop or another actor (got {target!r})")
    return Supervisor(child(target), name=target.name)


async def serve(
    tree: Actor,
    *,
    control: bool | str | Path = False,
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
    handle_signals: bool = True,
    on_started: Callable[[Supervisor], Any] | None = None,
) -> int:
    """Run ``tree`` until it ends or a signal arrives; return the exit status.

    Args:
        tree: a Supervisor, or a single actor (wrapped in one).
        control: serve the control socket: ``True`` at
            :func:`~supervised_loops.control.default_socket_path`, or a path.
        shutdown_timeout: seconds the graceful shutdown may take in total.
        handle_signals: install SIGINT/SIGTERM handlers (main thread only).
        on_started: called with the tree once it has started (e.g. to show it).

    Returns:
        0 after a clean stop, 1 after an escalated failure (logged here).

    If ``serve`` itself is cancelled, the tree is cancelled and the
    cancellation propagates.
    """
    shutdown_timeout = _validate.seconds("shutdown_timeout", shutdown_timeout)
    root = as_tree(tree)
    event_loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    signals_seen: list[int] = []

    def on_signal(signum: int) -> None:
        signals_seen.append(signum)
        if len(signals_seen) == 1:
            logger.warning("%s received: shutting down %r", signal.Signals(signum).name, root.name)
            stop_requested.set()
        else:
            logger.warning("second signal: cancelling %r now", root.name)
            root.tell(Cancel())

    installed: list[int] = []
    if handle_signals:
        for signum in (int(signal.SIGINT), int(signal.SIGTERM)):
            event_loop.add_signal_handler(signum, on_signal, signum)
            installed.append(signum)
    server: ControlServer | None = None
    try:
        await root.start()
        if control:
            path = default_socket_path(root.name) if control is True else Path(control)
            server = ControlServer(root, path)
            await server.start()
            logger.info("control socket: %s", path)
        if on_started is not None:
            on_started(root)
        ended = asyncio.ensure_future(root.wait())
        stopping = asyncio.ensure_future(stop_requested.wait())
        try:
            await asyncio.wait((ended, stopping), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not ended.done():
            try:
                await asyncio.wait_for(root.stop(), shutdown_timeout)
            except TimeoutError:
                logger.error(
                    "shutdown of %r took longer than %s seconds: cancelling",
                    root.name,
                    shutdown_timeout,
                )
                root.tell(Cancel())
            await asyncio.wait((ended,))
        try:
            ended.result()
        except Exception as error:
            logger.error("%r failed: %s", root.name, error, exc_info=error)
            return 1
        return 0
    finally:
        if server is not None:
            await server.close()
        for signum in installed:
            event_loop.remove_signal_handler(signum)
        if root.is_running():
            with contextlib.suppress(Exception):
                await root.stop()


def run(
    tree: Actor,
    *,
    control: bool | str | Path = False,
    shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
    on_started: Callable[[Supervisor], Any] | None = None,
) -> None:
    """Run ``tree`` as the program: until it ends or SIGINT/SIGTERM.

    Returns after a clean stop; after an escalated failure, logs it and
    raises ``SystemExit(1)``. See :func:`serve` for the arguments.

    Raises:
        SystemExit: with status 1 when the tree failed.
    """
    status = asyncio.run(
        serve(tree, control=control, shutdown_timeout=shutdown_timeout, on_started=on_started)
    )
    if status:
        raise SystemExit(status)
