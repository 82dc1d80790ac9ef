"""The ``supervised-loops`` console command.

::

    supervised-loops run  TARGET [--socket PATH] [--no-control] [--no-live]
    supervised-loops tree TARGET
    supervised-loops ctl  [--socket PATH | --name NAME] COMMAND [PATH] [interval options]

``TARGET`` is ``package.module:attribute`` or ``path/to/file.py:attribute``;
the attribute is an actor (a Supervisor, a Loop, ...) or a function of no
arguments returning one. ``run`` shows the live tree while it runs when the
output is a terminal, and logs events otherwise. ``ctl`` talks to a running
service over its control socket (see :mod:`supervised_loops.control`).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib
import importlib.util
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from .actor import Actor
from .control import COMMANDS, ControlClient, default_socket_path
from .events import Event
from .messages import ActorStatus, State
from .render import render_status
from .runner import as_tree, serve
from .supervisor import Supervisor

__all__ = ["load_target", "main"]

#: Seconds between two redraws of the live tree.
LIVE_REFRESH_SECONDS = 1.0


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
        sys.path.insert(0, str(path.parent))
        spec.loader.exec_module(module)
    else:
        sys.path.insert(0, str(Path.cwd()))
        module = importlib.import_module(module_part)
    value: Any = module
    for part in attribute.split("."):
        value = getattr(value, part)
    if not isinstance(value, Actor) and callable(value):
        value = value()
    if not isinstance(value, Actor):
        raise TypeError(f"{target!r} is not an actor nor a function returning one (got {value!r})")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="supervised-loops", description="Run and steer supervision trees of loops."
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default: INFO)")
    commands = parser.add_subparsers(dest="action", required=True)

    run = commands.add_parser("run", help="run a tree until Ctrl-C, SIGTERM or its end")
    run.add_argument("target", help="module:attribute or path/to/file.py:attribute")
    run.add_argument("--socket", help="control socket path (default: per-user runtime dir)")
    run.add_argument("--no-control", action="store_true", help="do not serve the control socket")
    run.add_argument("--no-live", action="store_true", help="do not redraw the live tree")
    run.add_argument(
        "--shutdown-timeout", type=float, default=30.0, help="seconds for a graceful shutdown"
    )

    tree = commands.add_parser("tree", help="print a tree without running it")
    tree.add_argument("target")

    ctl = commands.add_parser("ctl", help="send a control message to a running service")
    where = ctl.add_mutually_exclusive_group()
    where.add_argument("--socket", help="control socket path")
    where.add_argument("--name", help="name of the service's root (finds its default socket)")
    ctl.add_argument("command", choices=COMMANDS)
    ctl.add_argument("path", nargs="?", default="", help="actor path, e.g. app/poller")
    ctl.add_argument("--seconds", type=float)
    ctl.add_argument("--minutes", type=float)
    ctl.add_argument("--hours", type=float)
    ctl.add_argument(
        "--time",
        action="append",
        help="time of day HH:MM[:SS] (UTC) or HH:MM@Zone/Name; repeatable",
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
    found = ", ".join(s.stem for s in sockets) or "none"
    raise SystemExit(f"supervised-loops ctl: say which service with --name (running: {found})")


def _ctl_request(args: argparse.Namespace) -> dict[str, Any]:
    request: dict[str, Any] = {"command": args.command, "path": args.path}
    if args.command == "change-interval":
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


def _print_reply(reply: dict[str, Any], raw: bool) -> int:
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
    else:
        print(json.dumps(result, indent=2))
    return 0


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
        children=tuple(_status_from_json(child) for child in data["children"]),
    )


async def _live(tree: Supervisor) -> None:
    """Redraw the tree in place, once a second, until cancelled."""
    while True:
        text = render_status(tree.status())
        sys.stdout.write("\x1b[H\x1b[2J" + text + "\n\n(Ctrl-C to stop)\n")
        sys.stdout.flush()
        await asyncio.sleep(LIVE_REFRESH_SECONDS)


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


async def _run(args: argparse.Namespace, target: Actor) -> int:
    tree = as_tree(target)
    show_live = not args.no_live and sys.stdout.isatty()
    watchers: list[asyncio.Task[None]] = []

    def started(root: Supervisor) -> None:
        watchers.append(asyncio.ensure_future(_live(root) if show_live else _log_events(root)))

    control: bool | str = False if args.no_control else (args.socket or True)
    try:
        return await serve(
            tree, control=control, shutdown_timeout=args.shutdown_timeout, on_started=started
        )
    finally:
        for watcher in watchers:
            watcher.cancel()
        if show_live:
            print(render_status(tree.status()))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console command; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.action == "ctl":
        try:
            reply = asyncio.run(ControlClient(_socket_for(args)).request(_ctl_request(args)))
        except ConnectionError as error:
            print(f"supervised-loops ctl: {error}", file=sys.stderr)
            return 2
        return _print_reply(reply, args.json)
    target = load_target(args.target)
    if args.action == "tree":
        print(render_status(as_tree(target).status()))
        return 0
    return asyncio.run(_run(args, target))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
