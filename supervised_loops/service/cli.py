"""The ``supervised-loops`` console command.

    supervised-loops [--log-level LEVEL] [--version]
    supervised-loops run  TARGET [--socket PATH | --no-control] [--no-live]
                                 [--metrics-port PORT] [--shutdown-timeout SECONDS]
                                 [--control-idle-timeout SECONDS]
                                 [--control-max-connections N]
                                 [--dashboard HOST:PORT [--dashboard-control]
                                  [--dashboard-token-file PATH]]
    supervised-loops tree TARGET
    supervised-loops ctl  [--socket PATH | --name NAME] [--json] COMMAND [PATH]
                          [--seconds N] [--minutes N] [--hours N] [--time HH:MM[@ZONE] ...]

``TARGET`` is ``package.module:attribute`` or ``path/to/file.py:attribute``;
the attribute is an actor (a Supervisor, a Loop, ...) or a function of no
arguments returning one. ``run`` shows the live tree while it runs when the
output is a terminal, and logs events otherwise. ``ctl`` talks to a running
service over its control socket (see `supervised_loops.service.control`).
``--log-level`` may come anywhere on the line.

Exit status: 0 success (and a ``run`` stopped by a signal before its tree
started); 1 the tree failed or its shutdown was forced (``run``), or the
service answered with an error (``ctl``); 2 a usage error: bad arguments, a
TARGET that cannot be loaded, a control socket that cannot be served, no
service to talk to; 130/143 (128 + the signal) ``ctl`` or ``tree``
interrupted by SIGINT/SIGTERM. The full page is ``docs/cli.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from ..events import Event, Subscription
from ..supervision.face import Supervisor
from .cli_parser import HEALTH_TIMEOUT, build_parser
from .control import (
    REQUEST_TIMEOUT,
    ControlClient,
    ControlLimits,
    default_socket_path,
)
from .ctl_follow import follow_events, watch_status
from .ctl_output import print_reply
from .live_view import LiveView
from .render import render_status
from .runner import as_tree, serve
from .startup import ForcedStop, StartupSignals
from .target import describe_load_error, load_target

__all__ = ["describe_event", "load_target", "main"]

#: Exit status of a usage error (argparse's own, for every usage error).
USAGE_ERROR = 2

logger = logging.getLogger("supervised_loops")


class _UsageError(Exception):
    """A mistake on the command line: reported on stderr, exit status 2."""


def _dashboard_token(args: argparse.Namespace) -> str | None:
    if args.dashboard_token_file is None:
        return None
    try:
        token = Path(args.dashboard_token_file).read_text().strip()
    except OSError as error:
        raise _UsageError(f"cannot read the dashboard token: {error}") from error
    if not token:
        raise _UsageError(f"the dashboard token file {args.dashboard_token_file!r} is empty")
    return token


def _socket_for(args: argparse.Namespace) -> Path:
    if args.socket:
        return Path(args.socket)
    if args.name:
        return default_socket_path(args.name)
    directory = default_socket_path("x").parent
    sockets = sorted(directory.glob("*.sock")) if directory.is_dir() else []
    if len(sockets) == 1:
        return sockets[0]
    if not sockets:
        raise _UsageError(f"no service is running (no control socket in {str(directory)!r})")
    found = ", ".join(s.stem for s in sockets)
    raise _UsageError(f"say which service with --name or --socket (sockets found: {found})")


def _ctl_request(args: argparse.Namespace) -> dict[str, Any]:
    # Interval options go out whenever given: the server alone validates, and
    # refuses them on any command but change-interval instead of ignoring them.
    request: dict[str, Any] = {"command": args.command}
    if args.path is not None:
        request["path"] = args.path
    for field in ("seconds", "minutes", "hours"):
        value = getattr(args, field)
        if value is not None:
            request[field] = int(value) if value.is_integer() and math.isfinite(value) else value
    if args.types:
        request["types"] = args.types
    if args.time:
        times: list[Any] = []
        for text in args.time:
            clock, _, zone = text.partition("@")
            times.append({"time": clock, "tz": zone} if zone else clock)
        request["time"] = times
    return request


def describe_event(event: Event) -> str:
    """One line for an event: ``path: Kind field=value, ...``."""
    fields = attrs.asdict(event, recurse=False)
    del fields["path"], fields["at"]
    details = ", ".join(f"{key}={value!r}" for key, value in fields.items())
    return f"{event.path}: {type(event).__name__}" + (f" {details}" if details else "")


async def _log_events(events: Subscription) -> None:
    events_logger = logging.getLogger("supervised_loops.events")
    async with events:
        async for event in events:
            events_logger.info("%s", describe_event(event))


async def _run(args: argparse.Namespace, tree: Supervisor, held: list[int]) -> int:
    show_live = not args.no_live and sys.stdout.isatty()
    control: bool | str = False if args.no_control else (args.socket or True)
    footer = "(Ctrl-C to stop)"
    if control:
        footer = f"(Ctrl-C to stop; control socket {args.socket or default_socket_path(tree.name)})"
    view = LiveView(tree, sys.stdout, footer=footer) if show_live else None
    watchers: list[asyncio.Task[None]] = []
    subscriptions: list[Subscription] = []

    def started(root: Supervisor) -> None:
        if view is not None:
            view.open()
            watchers.append(asyncio.ensure_future(view.run()))
        else:
            # Subscribed now, not in the task's first step: an end that comes
            # before it (a loop whose count is reached at once) is logged too.
            events = root.events()
            watchers.append(asyncio.ensure_future(_log_events(events)))
            subscriptions.append(events)

    if args.dashboard is None and (args.dashboard_control or args.dashboard_token_file):
        raise _UsageError("--dashboard-control and --dashboard-token-file need --dashboard")
    try:
        return await serve(
            tree,
            control=control,
            shutdown_timeout=args.shutdown_timeout,
            on_started=started,
            control_limits=ControlLimits(
                idle_timeout=args.control_idle_timeout,
                max_connections=args.control_max_connections,
            ),
            held_signals=held,
            metrics_port=args.metrics_port,
            dashboard=args.dashboard,
            dashboard_control=args.dashboard_control,
            dashboard_token=_dashboard_token(args),
        )
    except (OSError, RuntimeError, ImportError, ValueError) as error:  # socket, port, dashboard
        raise _UsageError(str(error)) from error
    finally:
        for watcher in watchers:
            watcher.cancel()
        for subscription in subscriptions:
            subscription.close()
        await asyncio.gather(*watchers, return_exceptions=True)
        if view is not None and watchers:
            view.close()


def _load(target: str) -> Supervisor:
    try:
        return as_tree(load_target(target))  # as_tree: an actor supervised elsewhere
    except Exception as error:
        raise _UsageError(f"cannot load {target!r}:{describe_load_error(error)}") from error


def _interrupted_by(signum: int) -> int:
    return 128 + signum


def _ctl(args: argparse.Namespace) -> int:
    if args.command == "events":
        client = ControlClient(_socket_for(args))
        return _follow(args, follow_events(client, _ctl_request(args), args.json))
    if args.watch:
        watch = watch_status(ControlClient(_socket_for(args)), _ctl_request(args), args.json)
        return _follow(args, watch)
    health = args.command == "health"
    timeout = args.timeout
    if timeout is None:
        timeout = HEALTH_TIMEOUT if health else REQUEST_TIMEOUT + 5
    try:
        client = ControlClient(_socket_for(args), timeout=timeout)
        reply = asyncio.run(client.request(_ctl_request(args)))
    except (ConnectionError, TimeoutError, _UsageError) as error:
        if health:  # a probe: no answer in time means not live
            print(f"not live: {error}")
            return 1
        raise _UsageError(str(error)) from error
    return print_reply(reply, args.json, args.path or "")


def _follow(args: argparse.Namespace, following: Any) -> int:
    """Run a command that goes on until Ctrl-C (which ends it with status 0)."""
    try:
        status: int = asyncio.run(following)
    except KeyboardInterrupt:
        return 0
    except (ConnectionError, TimeoutError) as error:
        raise _UsageError(str(error)) from error
    return status


def _serve_target(args: argparse.Namespace, guard: StartupSignals) -> int:
    try:
        tree = _load(args.target)
    except ForcedStop as stop:
        logger.warning("second %s while loading %r: stopped", _name(stop.signum), args.target)
        return 1
    guard.forcing = False  # from here on a second signal is the runner's to handle
    if guard.received:
        logger.warning(
            "%s received while loading %r: nothing was started",
            _name(guard.received[0]),
            args.target,
        )
        return 0
    return asyncio.run(_run(args, tree, guard.received))


def _name(signum: int) -> str:
    return signal.Signals(signum).name


def main(argv: Sequence[str] | None = None, *, held_signals: list[int] | None = None) -> int:
    """Entry point of the console command; returns the exit status.

    SIGINT and SIGTERM are held from the first moment (``held_signals``:
    those the console script received before this module was imported):
    a signal while ``run`` loads its target ends it once loaded, with status
    0 and nothing started; a second one stops the loading at once (status
    1). A usage error (bad TARGET, no service to talk to, a control socket
    that cannot be served) prints on stderr and returns 2, as argparse does
    for bad arguments; a TARGET whose own code raised is shown with its
    traceback (the user's frames only).
    """
    guard = StartupSignals(held_signals)
    if threading.current_thread() is threading.main_thread():
        guard.install()
    try:
        return _main(argv, guard)
    finally:
        guard.restore()


def _main(argv: Sequence[str] | None, guard: StartupSignals) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.action == "run":
            return _serve_target(args, guard)
        if guard.received:
            return _interrupted_by(guard.received[0])
        guard.restore()
        guard.default()  # ctl and tree: a Ctrl-C interrupts them at once
        try:
            if args.action == "ctl":
                return _with_stdout_gone(_ctl, args)
            tree = _load(args.target)
            return _with_stdout_gone(lambda _: _print(render_status(tree.status())), args)
        except KeyboardInterrupt:
            return _interrupted_by(signal.SIGINT)
    except _UsageError as error:
        print(f"supervised-loops {args.action}: {error}", file=sys.stderr)
        return USAGE_ERROR


def _print(text: str) -> int:
    print(text)
    return 0


def _with_stdout_gone(command: Any, args: argparse.Namespace) -> int:
    """Run ``command``; a reader that went away (``| head``) ends it quietly."""
    try:
        status: int = command(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # Python flushes stdout again at exit: point it at /dev/null first,
        # or that flush fails once more, with a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 0
    return status
