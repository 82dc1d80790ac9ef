"""The console command's argument parser: subcommands, options and their checks.

Kept apart from `cli` (which carries the commands out) so that each stays
one concept. An option's value is checked here, by argparse types whose
errors name the option as the user typed it (``'--seconds' must be >= 0
(got -1)``), so a mistake is a usage error (exit status 2) before anything
runs. Imports the validators and the control protocol's names only.
"""

from __future__ import annotations

import argparse
import importlib.metadata
from typing import Any

from .. import _validate
from .control import (
    COMMANDS,
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    EVENT_TYPES,
    REQUEST_TIMEOUT,
)
from .runner import DEFAULT_SHUTDOWN_TIMEOUT

__all__ = ["HEALTH_TIMEOUT", "build_parser"]

#: Seconds ``ctl health`` waits for the answer: a service whose event loop
#: does not answer within this is not live.
HEALTH_TIMEOUT = 5.0

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _version() -> str:
    try:
        return importlib.metadata.version("supervised-loops")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        return "unknown (not installed)"


def _port(text: str) -> int:
    """An argparse type: a TCP port, 0 to 65535."""
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(
            f"'--metrics-port' must be a port, 0..65535 (got {text!r})"
        )
    return int(text)


def _address(text: str) -> str:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"'--dashboard' must be HOST:PORT (got {text!r})")
    return text


def _non_negative(option: str) -> Any:
    """An argparse type: a finite number >= 0, the error naming ``option``."""

    def convert(text: str) -> float:
        try:
            number = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{option!r} must be a number (got {text!r})"
            ) from None
        try:
            return _validate.seconds(option, number)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error).replace(repr(number), text)) from None

    return convert


def _positive_int(option: str) -> Any:
    def convert(text: str) -> int:
        try:
            return _validate.positive_int(option, int(text))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{option!r} must be an int > 0 (got {text!r})"
            ) from None

    return convert


def _log_level(default: str) -> argparse.ArgumentParser:
    # A fresh parent each time: parents share their action objects, and a
    # default set on one would show through every subcommand.
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--log-level",
        default=default,
        type=str.upper,
        choices=_LOG_LEVELS,
        help="logging level (default: INFO)",
    )
    return parent


def build_parser() -> argparse.ArgumentParser:
    # --log-level is accepted before or after the subcommand: the subcommands
    # take it with default SUPPRESS, so they never overwrite the main one.
    parser = argparse.ArgumentParser(
        prog="supervised-loops",
        description="Run and steer supervision trees of loops.",
        parents=[_log_level("INFO")],
    )
    log_level = _log_level(argparse.SUPPRESS)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="action", required=True)

    target_help = "module:attribute or path/to/file.py:attribute (an actor or a factory of one)"
    run = commands.add_parser(
        "run", help="run a tree until Ctrl-C, SIGTERM or its end", parents=[log_level]
    )
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
        "--metrics-port",
        type=_port,
        metavar="PORT",
        help="serve /metrics, /healthz and /readyz over HTTP on this port "
        "(needs the prometheus extra)",
    )
    run.add_argument(
        "--shutdown-timeout",
        type=_non_negative("--shutdown-timeout"),
        default=DEFAULT_SHUTDOWN_TIMEOUT,
        metavar="SECONDS",
        help="seconds the graceful shutdown may take before everything is cancelled "
        "(default: %(default)s)",
    )
    run.add_argument(
        "--control-idle-timeout",
        type=_non_negative("--control-idle-timeout"),
        default=DEFAULT_IDLE_TIMEOUT,
        metavar="SECONDS",
        help="seconds a control connection may stay idle before it is closed "
        "(default: %(default)s)",
    )
    run.add_argument(
        "--control-max-connections",
        type=_positive_int("--control-max-connections"),
        default=DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help="control connections open at once (default: %(default)s)",
    )

    run.add_argument(
        "--dashboard",
        metavar="HOST:PORT",
        type=_address,
        help="serve the web dashboard there (e.g. 127.0.0.1:8080; the 'dashboard' extra)",
    )
    run.add_argument(
        "--dashboard-control",
        action="store_true",
        help="let the dashboard send control commands (needs --dashboard-token-file)",
    )
    run.add_argument(
        "--dashboard-token-file",
        metavar="PATH",
        help="a file holding the dashboard's token (needed for control and non-loopback binds)",
    )

    tree = commands.add_parser("tree", help="print a tree without running it", parents=[log_level])
    tree.add_argument("target", metavar="TARGET", help=target_help)

    ctl = commands.add_parser(
        "ctl", help="send a control message to a running service", parents=[log_level]
    )
    where = ctl.add_mutually_exclusive_group()
    where.add_argument("--socket", metavar="PATH", help="the service's control socket")
    where.add_argument("--name", help="the name of the service's root (finds its default socket)")
    ctl.add_argument(
        "command", metavar="COMMAND", choices=COMMANDS, help=f"one of: {', '.join(COMMANDS)}"
    )
    ctl.add_argument(
        "path",
        nargs="?",
        default=None,
        metavar="PATH",
        help="the actor, as status shows it (demo/ingest/poller) or relative to the root "
        "(ingest/poller); default: the root",
    )
    for unit in ("seconds", "minutes", "hours"):
        ctl.add_argument(
            f"--{unit}",
            type=_non_negative(f"--{unit}"),
            metavar="N",
            help=f"change-interval: {unit} (adds up)",
        )
    ctl.add_argument(
        "--time",
        action="append",
        metavar="HH:MM[:SS][@ZONE]",
        help="change-interval: a time of day, in UTC or in the named zone "
        "(09:30@Europe/Berlin); repeatable",
    )
    ctl.add_argument("--json", action="store_true", help="print the raw JSON reply")
    ctl.add_argument(
        "--type",
        action="append",
        dest="types",
        metavar="EVENT",
        choices=EVENT_TYPES,
        help="events: only events of this type (ActorEnded, IterationFailed, ...); repeatable",
    )
    ctl.add_argument(
        "--watch", action="store_true", help="status: redraw the tree every second until Ctrl-C"
    )
    ctl.add_argument(
        "--timeout",
        type=_non_negative("--timeout"),
        default=None,
        metavar="SECONDS",
        help=f"seconds to wait for the reply (default: {HEALTH_TIMEOUT:g} for health, "
        f"{REQUEST_TIMEOUT + 5:g} otherwise)",
    )
    return parser
