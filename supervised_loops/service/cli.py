"""The ``supervised-loops`` console command.


    supervised-loops run  TARGET [--socket PATH | --no-control] [--no-live]
                                 [--shutdown-timeout SECONDS]
    supervised-loops tree TARGET
    supervised-loops ctl  [--socket PATH | --name NAME] [--json] COMMAND [PATH]
                          [--seconds N] [--minutes N] [--hours N] [--time HH:MM[@ZONE] ...]

``TARGET`` is ``package.module:attribute`` or ``path/to/file.py:attribute``;
the attribute is an actor (a Supervisor, a Loop, ...) or a function of no
arguments returning one. ``run`` shows the live tree while it runs when the
output is a terminal, and logs events otherwise. ``ctl`` talks to a running
service over its control socket (see `supervised_loops.control`).

Exit status: 0 success; 1 the tree failed (``run``), or the service answered
with an error (``ctl``); 2 a usage error: bad arguments, a TARGET that cannot
be loaded, a control socket that cannot be served, no service to talk to.
The full page is ``docs/cli.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib
import importlib.util
import json
import logging
import shutil
import sys
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import attrs

from .. import _validate
from ..core.actor import Actor
from ..events import Event
from ..messages import ActorStatus, State
from ..supervision.face import Supervisor
from .control import COMMANDS, ControlClient, default_socket_path
from .render import render_status
from .runner import DEFAULT_SHUTDOWN_TIMEOUT, as_tree, serve

__all__ = ["load_target", "main"]

#: Seconds between two redraws of the live tree.
LIVE_REFRESH_SECONDS = 1.0

#: Log records the live view keeps (it shows as many as fit the screen).
LIVE_LOG_RECORDS = 200

#: Exit status of a usage error (argparse's own, for every usage error).
USAGE_ERROR = 2

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class _UsageError(Exception):
    """A mistake on the command line: reported in one line, exit status 2."""


def load_target(target: str) -> Actor:
    """Import ``module:attribute`` or ``file.py:attribute`` and return the actor.

    Raises:
        ValueError: ``target`` has no ``:attribute`` part.
        ImportError, AttributeError: the module or attribute does not exist.
        TypeError: the attribute is not an actor nor a factory of one.
    """
    module_part, sep, attribute = target.rpartition(":")
    if not sep or not module_part or not attribute:
        raise ValueError(
            f"TARGET must be 'module:attribute' or 'file.py:attribute' (got {target!r})"
        )
    if module_part.endswith(".py") or "/" in module_part:
        path = Path(module_part).resolve()
        if not path.is_file():
            raise ImportError(f"no such file: {module_part!r}")
        name = f"_supervised_loops_target_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {module_part!r}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        _import_root(path.parent)  # the file's sibling modules import as usual
        spec.loader.exec_module(module)
    else:
        _import_root(Path.cwd())  # as ``python -m`` does
        module = importlib.import_module(module_part)
    value: Any = module
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise AttributeError(f"{module_part!r} has no attribute {attribute!r}") from None
    if not isinstance(value, Actor) and callable(value):
        value = value()
    if not isinstance(value, Actor):
        raise TypeError(f"{target!r} is not an actor nor a function returning one (got {value!r})")
    return value


def _import_root(directory: Path) -> None:
    entry = str(directory)
    if entry not in sys.path:
        sys.path.insert(0, entry)


def _seconds(text: str) -> float:
    try:
        return _validate.seconds("--shutdown-timeout", float(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="supervised-loops", description="Run and steer supervision trees of loops."
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=_LOG_LEVELS,
        help="logging level (default: INFO)",
    )
    commands = parser.add_subparsers(dest="action", required=True)

    target_help = "module:attribute or path/to/file.py:attribute (an actor or a factory of one)"
    run = commands.add_parser("run", help="run a tree until Ctrl-C, SIGTERM or its end")
    run.add_argument("target", metavar="TARGET", help=target_help)
    run.add_argument(
        "--socket",
        metavar="PATH",
        help="control socket path, in a directory only you can enter "
        "(default: <runtime dir>/supervised-loops/<root name>.sock)",
    )
    run.add_argument("--no-control", action="store_true", help="do not serve the control socket")
    run.add_argument(
        "--no-live", action="store_true", help="log events instead of redrawing the live tree"
    )
    run.add_argument(
        "--shutdown-timeout",
        type=_seconds,
        default=DEFAULT_SHUTDOWN_TIMEOUT,
        metavar="SECONDS",
        help="seconds the graceful shutdown may take before everything is cancelled "
        "(default: %(default)s)",
    )

    tree = commands.add_parser("tree", help="print a tree without running it")
    tree.add_argument("target", metavar="TARGET", help=target_help)

    ctl = commands.add_parser("ctl", help="send a control message to a running service")
    where = ctl.add_mutually_exclusive_group()
    where.add_argument("--socket", metavar="PATH", help="the service's control socket")
    where.add_argument("--name", help="the name of the service's root (finds its default socket)")
    ctl.add_argument(
        "command", metavar="COMMAND", choices=COMMANDS, help=f"one of: {', '.join(COMMANDS)}"
    )
    ctl.add_argument(
        "path",
        nargs="?",
        default="",
        metavar="PATH",
        help="the actor, as status shows it (demo/ingest/poller) or relative to the root "
        "(ingest/poller); default: the root",
    )
    for unit in ("seconds", "minutes", "hours"):
        ctl.add_argument(
            f"--{unit}", type=float, metavar="N", help=f"change-interval: {unit} (adds up)"
        )
    ctl.add_argument(
        "--time",
        action="append",
        metavar="HH:MM[:SS][@ZONE]",
        help="change-interval: a time of day, in UTC or in the named zone "
        "(09:30@Europe/Berlin); repeatable",
    )
    ctl.add_argument("--json", action="store_true", help="print the raw JSON reply")
    return parser


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
    request: dict[str, Any] = {"command": args.command, "path": args.path}
    for field in ("seconds", "minutes", "hours"):
        value = getattr(args, field)
        if value is not None:
            request[field] = value
    if args.time:
        times: list[Any] = []
        for text in args.time:
            clock, _, zone = text.partition("@")
            times.append({"time": clock, "tz": zone} if zone else clock)
        request["time"] = times
    return request


def _print_reply(reply: dict[str, Any], raw: bool, path: str = "") -> int:
    if raw:
        print(json.dumps(reply, indent=2))
        return 0 if reply.get("ok") else 1
    if not reply.get("ok"):
        error = reply.get("error", {})
        print(f"error: {error.get('type')}: {error.get('message')}", file=sys.stderr)
        return 1
    result = reply["result"]
    if isinstance(result, dict) and "state" in result:
        print(render_status(_status_from_json(result)))
    elif isinstance(result, dict) and "iteration" in result:
        print(describe_ack(path, result))
    else:
        print(json.dumps(result, indent=2))
    return 0


def describe_ack(path: str, ack: dict[str, Any]) -> str:
    """One line for an acknowledgement: ``app/poller: Stop done at iteration 6``."""
    upcoming = ack.get("next_iteration")
    after = f", next run {upcoming}" if upcoming else ", not scheduled"
    return f"{path or 'root'}: {ack['message']} done at iteration {ack['iteration']}{after}"


def _status_from_json(data: dict[str, Any]) -> ActorStatus:
    upcoming = data.get("next_iteration")
    return ActorStatus(
        name=data["name"],
        path=data["path"],
        kind=data["kind"],
        state=State(data["state"]),
        current_loop=data["current_loop"],
        next_iteration=None if upcoming is None else dt.datetime.fromisoformat(upcoming),
        failures=data["failures"],
        restarts=data["restarts"],
        last_error=data["last_error"],
        schedule=data["schedule"],
        lease=data.get("lease"),
        children=tuple(_status_from_json(child) for child in data["children"]),
    )


class _LiveView:
    """The tree drawn in place on a terminal, once a second, with the latest log lines.

    The view takes the terminal's alternate screen (as ``top`` does), so the
    shell's own screen and scrollback are left as they were, and redraws by
    moving the cursor home and overwriting: each line is cut to the
    terminal's width and cleared to its end, and the rest of the screen is
    cleared below, so nothing flickers, wraps or lingers. Log records that
    would go to the terminal (root handlers writing to a tty) are held and
    shown under the tree instead of being scribbled over it; when the view
    closes they go back to those handlers (the latest
    `LIVE_LOG_RECORDS` of them), followed by the final tree on the
    normal screen.
    """

    def __init__(self, tree: Supervisor, stream: TextIO, *, footer: str = "") -> None:
        self._tree = tree
        self._stream = stream
        self._footer = footer
        self._records: deque[logging.LogRecord] = deque(maxlen=LIVE_LOG_RECORDS)
        self._diverted: list[logging.Handler] = []
        self._capture = _Capture(self._records)

    def open(self) -> None:
        """Take the alternate screen and hold the terminal's log records."""
        root = logging.getLogger()
        for handler in list(root.handlers):
            if _writes_to_terminal(handler):
                self._diverted.append(handler)
                root.removeHandler(handler)
        if self._diverted:
            self._capture.setFormatter(self._diverted[0].formatter)
            self._capture.setLevel(self._diverted[0].level)
            root.addHandler(self._capture)
        self._stream.write("\x1b[?1049h\x1b[?25l")  # alternate screen, cursor hidden
        self._stream.flush()

    def frame(self, width: int, height: int) -> str:
        """One redraw for a terminal of ``width`` × ``height`` characters."""
        lines = render_status(self._tree.status()).splitlines()
        lines += ["", self._footer] if self._footer else []
        room = height - 1 - len(lines)  # the last row stays empty: no scrolling
        if room > 1 and self._records:
            shown = list(self._records)[-(room - 1) :]
            lines.append("")
            for record in shown:
                lines.append(" ".join(self._capture.format(record).split()))
        lines = [line[:width] for line in lines[: max(height - 1, 1)]]
        return "\x1b[H" + "".join(line + "\x1b[K\n" for line in lines) + "\x1b[J"

    def draw(self) -> None:
        """Redraw the view at the terminal's current size."""
        size = shutil.get_terminal_size()
        self._stream.write(self.frame(size.columns, size.lines))
        self._stream.flush()

    async def run(self) -> None:
        """Redraw once a second until cancelled."""
        while True:
            self.draw()
            await asyncio.sleep(LIVE_REFRESH_SECONDS)

    def close(self) -> None:
        """Give the terminal back; replay the held log records; print the final tree."""
        self._stream.write("\x1b[?25h\x1b[?1049l")  # cursor shown, normal screen
        self._stream.flush()
        root = logging.getLogger()
        if self._diverted:
            root.removeHandler(self._capture)
            for handler in self._diverted:
                root.addHandler(handler)
                for record in self._records:
                    if record.levelno >= handler.level:
                        handler.handle(record)
            self._diverted.clear()
        self._stream.write(render_status(self._tree.status()) + "\n")
        self._stream.flush()


class _Capture(logging.Handler):
    """Keeps records in a bounded deque for the live view."""

    def __init__(self, records: deque[logging.LogRecord]) -> None:
        super().__init__()
        self._held = records

    def emit(self, record: logging.LogRecord) -> None:
        self._held.append(record)


def _writes_to_terminal(handler: logging.Handler) -> bool:
    if not isinstance(handler, logging.StreamHandler):
        return False
    isatty = getattr(handler.stream, "isatty", None)
    return bool(isatty is not None and isatty())


def describe_event(event: Event) -> str:
    """One line for an event: ``path: Kind field=value, ...``."""
    fields = attrs.asdict(event, recurse=False)
    del fields["path"], fields["at"]
    details = ", ".join(f"{key}={value!r}" for key, value in fields.items())
    return f"{event.path}: {type(event).__name__}" + (f" {details}" if details else "")


async def _log_events(tree: Supervisor) -> None:
    logger = logging.getLogger("supervised_loops.events")
    async with tree.events() as events:
        async for event in events:
            logger.info("%s", describe_event(event))


async def _run(args: argparse.Namespace, tree: Supervisor) -> int:
    show_live = not args.no_live and sys.stdout.isatty()
    control: bool | str = False if args.no_control else (args.socket or True)
    footer = "(Ctrl-C to stop)"
    if control:
        footer = f"(Ctrl-C to stop; control socket {args.socket or default_socket_path(tree.name)})"
    view = _LiveView(tree, sys.stdout, footer=footer) if show_live else None
    watchers: list[asyncio.Task[None]] = []

    def started(root: Supervisor) -> None:
        if view is not None:
            view.open()
            watchers.append(asyncio.ensure_future(view.run()))
        else:
            watchers.append(asyncio.ensure_future(_log_events(root)))

    try:
        return await serve(
            tree, control=control, shutdown_timeout=args.shutdown_timeout, on_started=started
        )
    except (OSError, RuntimeError) as error:  # the control socket cannot be served
        raise _UsageError(str(error)) from error
    finally:
        for watcher in watchers:
            watcher.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        if view is not None and watchers:
            view.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console command; returns the exit status.

    A usage error (bad TARGET, no service to talk to, a control socket that
    cannot be served) prints one line on stderr and returns 2, as argparse
    does for bad arguments.
    """
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.action == "ctl":
            try:
                reply = asyncio.run(ControlClient(_socket_for(args)).request(_ctl_request(args)))
            except (ConnectionError, TimeoutError) as error:
                raise _UsageError(str(error)) from error
            return _print_reply(reply, args.json, args.path)
        try:
            tree = as_tree(load_target(args.target))  # as_tree: an actor supervised elsewhere
        except (ImportError, AttributeError, TypeError, ValueError) as error:
            raise _UsageError(f"cannot load {args.target!r}: {error}") from error
        if args.action == "tree":
            print(render_status(tree.status()))
            return 0
        return asyncio.run(_run(args, tree))
    except _UsageError as error:
        print(f"supervised-loops {args.action}: {error}", file=sys.stderr)
        return USAGE_ERROR
