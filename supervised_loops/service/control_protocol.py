"""The control protocol: what a request may hold, and what a reply looks like.

Pure functions, no I/O: `decode_request` turns a request line into a Python
value, `parse_request` validates it into a target path and a message, and
`to_json` / `error_reply` build the replies. The server (`control_server`)
and the client (`control_client`) share them, and the fuzz tests drive them
directly. Every check raises ``ValueError`` with a message that names the
field and shows the bad value, in the library's one message shape,
``'<field>' must be <rule> (got <value>)``, built by ``_validate``: the value
is cut to `SHOWN_WIDTH` characters, and the amounts of ``change-interval``
obey the same rules (and the same 1000-year limit) as ``loop(seconds=...)``.
A wrong type in a request is a wrong value of the request, so the protocol
raises ``ValueError`` for both.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import os
import re
import tempfile
import zoneinfo
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from .. import _validate
from .. import events as events_module
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
    "COMMANDS",
    "EVENT_TYPES",
    "MAX_PATH_LENGTH",
    "MAX_REPLY_BYTES",
    "MAX_REQUEST_BYTES",
    "REQUEST_TIMEOUT",
    "ROOT",
    "SHOWN_WIDTH",
    "CheckHealth",
    "StreamEvents",
    "decode_request",
    "default_socket_path",
    "error_reply",
    "event_to_json",
    "parse_request",
    "suggest_paths",
    "to_json",
]

#: Longest request line accepted, in bytes (the newline not counted).
MAX_REQUEST_BYTES = 64 * 1024

#: Longest reply line the client reads, in bytes: the status of a tree of
#: ten thousand loops is a few megabytes of JSON.
MAX_REPLY_BYTES = 64 * 1024 * 1024

#: Seconds a request may wait for the tree's acknowledgement.
REQUEST_TIMEOUT = 30.0

#: Longest ``path`` accepted, in characters.
MAX_PATH_LENGTH = 1024

#: Longest time zone name accepted (the longest IANA name has 32 characters).
MAX_ZONE_LENGTH = 64

#: Most times of day one ``change-interval`` may carry (one a minute).
MAX_TIMES = 1440

#: Longest bad value an error reply shows, in characters: a request may hold
#: a string of 64 KiB or an int of 4 000 digits, and a reply names it, briefly.
SHOWN_WIDTH = 60

#: What `parse_request` returns as the path of a request that names no actor.
ROOT = ""

# The characters of IANA zone names ("America/Argentina/Buenos_Aires",
# "Etc/GMT+5"); a zone name is never a path outside the database.
_ZONE_NAME = re.compile(r"[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*")

_SIMPLE: dict[str, Callable[[], ControlMessage]] = {
    "stop": Stop,
    "cancel": Cancel,
    "restart": Restart,
    "pause": Pause,
    "resume": Resume,
    "run-now": RunNow,
    "status": GetStatus,
}
COMMANDS = (*_SIMPLE, "change-interval", "health", "events")

#: The event types ``events`` may be filtered by.
EVENT_TYPES = tuple(
    name
    for name in sorted(events_module.__all__)
    if isinstance(getattr(events_module, name), type)
    and issubclass(getattr(events_module, name), events_module.Event)
    and name != "Event"
)


@attrs.frozen
class CheckHealth:
    """A ``health`` request: answered by the server itself, never sent to an actor."""


@attrs.frozen
class StreamEvents:
    """An ``events`` request: the connection becomes a stream of the actor's events.

    Attributes:
        types: the event type names to send; empty: all of them.
    """

    types: frozenset[str] = frozenset()


_UNITS = {"seconds": 1.0, "minutes": 60.0, "hours": 3600.0}


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


def _must(name: str, rule: str, value: Any) -> ValueError:
    # The one message shape, the value cut to the reply's width.
    return ValueError(_validate.message(name, rule, value, width=SHOWN_WIDTH))


def _show(value: Any) -> str:
    return _validate.show(value, SHOWN_WIDTH)


def decode_request(line: bytes) -> Any:
    """Decode one request line (UTF-8 JSON) into a Python value.

    Raises:
        ValueError: the line is not UTF-8, not JSON, nested too deeply for
            the decoder, or holds an integer of more digits than Python
            converts (4 300).
    """
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"malformed JSON: {error}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"malformed JSON: {error}") from None
    except RecursionError:
        raise ValueError("malformed JSON: nested too deeply") from None
    except ValueError:  # int("9" * 5000): the interpreter's int-size limit
        raise ValueError("malformed JSON: a number has too many digits") from None


def check_path(path: Any) -> str:
    """Return ``path`` if it is a well-formed actor path, else raise.

    A path is names joined by ``/`` (``demo/ingest/poller``): no empty name,
    so no leading, trailing or doubled ``/``. An empty string is refused too
    (leave ``path`` out to name the root): none of these may quietly mean
    the whole tree.

    Raises:
        ValueError: ``path`` is not a string, is empty, too long, or has an
            empty name in it.
    """
    if not isinstance(path, str):
        raise _must("path", "a string", path)
    if len(path) > MAX_PATH_LENGTH:
        raise _must("path", f"at most {MAX_PATH_LENGTH} characters", path)
    if not path or "" in path.split("/"):
        raise _must(
            "path", "names joined by '/', with no empty name; leave it out for the root", path
        )
    return path


def parse_request(request: Any) -> tuple[str, ControlMessage | CheckHealth | StreamEvents]:
    """Validate a decoded request; return the target path and the message.

    The path is `ROOT` (``""``) when the request names no actor.

    Raises:
        ValueError: the request is not an object, names an unknown command,
            has unknown or ill-typed fields, an ill-formed path, or an invalid
            interval; the message names the field.
    """
    if not isinstance(request, dict):
        raise ValueError(f"a request must be a JSON object (got {type(request).__name__})")
    command = request.get("command")
    if not isinstance(command, str) or command not in COMMANDS:
        raise _must("command", f"one of {', '.join(COMMANDS)}", command)
    path = check_path(request["path"]) if "path" in request else ROOT
    allowed = {"command", "path"} | ({*_UNITS, "time"} if command == "change-interval" else set())
    if command == "events":
        allowed.add("types")
    unknown = set(request) - allowed
    if unknown:
        raise ValueError(f"unknown fields for {command!r}: {_names(unknown)}")
    if command == "health":
        return path, CheckHealth()
    if command == "events":
        return path, StreamEvents(_event_types(request.get("types", [])))
    if command != "change-interval":
        return path, _SIMPLE[command]()
    return path, _change_interval(request)


def _change_interval(request: Mapping[str, Any]) -> ChangeInterval:
    parts: dict[str, Any] = {}
    for field, unit in _UNITS.items():
        if field in request:
            parts[field] = _amount(field, request[field], unit)
    if "time" in request:
        times = request["time"]
        if not isinstance(times, list):
            times = [times]
        if len(times) > MAX_TIMES:
            raise ValueError(f"'time' must hold at most {MAX_TIMES} times (got {len(times)})")
        parts["time"] = [_time_of_day(i, item) for i, item in enumerate(times)]
    if not parts:
        raise ValueError("'change-interval' needs seconds, minutes, hours or time")
    try:
        return ChangeInterval(**parts)
    except (TypeError, ValueError) as error:  # e.g. an interval that adds up to zero
        raise ValueError(str(error)) from None


def _event_types(types: Any) -> frozenset[str]:
    if not isinstance(types, list) or not all(isinstance(name, str) for name in types):
        raise _must("types", "a list of event type names", types)
    unknown = [name for name in types if name not in EVENT_TYPES]
    if unknown:
        raise _must("types", f"event type names among {', '.join(EVENT_TYPES)}", unknown[0])
    return frozenset(types)


def event_to_json(event: events_module.Event) -> dict[str, Any]:
    """One event as a JSON object: ``{"type": "ActorEnded", "path": ..., "at": ..., ...}``."""
    fields: dict[str, Any] = {"type": type(event).__name__}
    for name, value in attrs.asdict(event, recurse=False).items():
        value = to_json(value)
        fields[name] = value if isinstance(value, str | int | float | bool | None) else repr(value)
    return fields


def _names(fields: set[str]) -> str:
    # Field names come from the client: a few, each cut short.
    return ", ".join(name[:30] for name in sorted(fields)[:5]) + (
        ", ..." if len(fields) > 5 else ""
    )


def _amount(field: str, value: Any, unit: float) -> float:
    # The library's own check of a duration, in the field's unit.
    try:
        return _validate.seconds(field, value, unit=unit, width=SHOWN_WIDTH)
    except TypeError as error:
        raise ValueError(str(error)) from None


def _zone(where: str, zone: Any) -> dt.tzinfo:
    if not isinstance(zone, str):
        raise ValueError(f"{where} 'tz' must be a zone name (got {_show(zone)})")
    if len(zone) > MAX_ZONE_LENGTH or not _ZONE_NAME.fullmatch(zone):
        raise ValueError(f"{where}: unknown time zone {_show(zone)}")
    try:
        return zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        # OSError: a directory of the zone database ("Europe"), a name the
        # file system refuses.
        raise ValueError(f"{where}: unknown time zone {_show(zone)}") from None


def _time_of_day(index: int, item: Any) -> dt.time:
    name = f"time[{index}]"
    where = repr(name)
    tz: dt.tzinfo = dt.UTC
    if isinstance(item, dict):
        unknown = set(item) - {"time", "tz"}
        if unknown:
            raise ValueError(
                f"{where} has unknown fields {[field[:30] for field in sorted(unknown)[:5]]}"
            )
        tz = _zone(where, item.get("tz"))
        item = item.get("time")
    if not isinstance(item, str) or len(item) > 32:
        raise _must(name, "'HH:MM[:SS]'", item)
    try:
        parsed = dt.time.fromisoformat(item)
    except ValueError:
        raise _must(name, "'HH:MM[:SS]'", item) from None
    return parsed.replace(tzinfo=tz) if parsed.tzinfo is None else parsed


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


def error_reply(error: BaseException, *, kind: str | None = None) -> dict[str, Any]:
    """The reply for a failure: ``{"ok": false, "error": {"type": ..., "message": ...}}``."""
    return {"ok": False, "error": {"type": kind or type(error).__name__, "message": str(error)}}


def _walk(status: ActorStatus) -> Iterator[ActorStatus]:
    yield status
    for child in status.children:
        yield from _walk(child)


def suggest_paths(status: ActorStatus, path: str, limit: int = 3) -> list[str]:
    """Full paths of actors that ``path`` probably meant, best first.

    An actor whose path ends with ``path`` (``poller`` for
    ``demo/ingest/poller``), or failing that whose own name is the last name
    of ``path`` (``ingest/poller`` when ``poller`` moved elsewhere).
    """
    tail = "/" + path
    ends = [s.path for s in _walk(status) if s.path.endswith(tail)]
    if ends:
        return ends[:limit]
    name = path.rsplit("/", 1)[-1]
    return [s.path for s in _walk(status) if s.name == name and s is not status][:limit]


def encode_reply(reply: Mapping[str, Any]) -> bytes:
    """One reply line: compact JSON and a newline (non-ASCII escaped)."""
    return json.dumps(reply, separators=(", ", ": ")).encode() + b"\n"
