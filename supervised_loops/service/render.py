"""Text rendering of a status snapshot, as a tree.

`render_status` turns an `ActorStatus`
(``tree.status()``, or ``await actor.ask(GetStatus())``) into lines of text,
one per actor, drawn as a tree with box-drawing characters:

    app          running                   failures 0  restarts 0
    ├── poller   sleeping  #12  in 4.2s    failures 1  restarts 0  last error: OSError: reset
    ├── pair     running                   failures 0  restarts 2
    │   ├── a    retrying  #5   in 1m 05s  failures 0  restarts 0
    │   └── b    failed    #0   -          failures 3  restarts 2  last error: ValueError: bad
    └── flusher  running   #3   due now    failures 0  restarts 0

It is what the console command shows, and what to print or log when a test
or a health check wants a picture of the tree. Rendering is a pure function
of the snapshot and ``now``: the same inputs give the same text, so it can be
tested exactly and used on a status received from another process.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math

from .. import _validate
from ..clock import SystemClock, get_clock
from ..messages import ActorStatus

__all__ = ["format_relative", "render_status"]

_BRANCH = "├── "
_LAST = "└── "
_PIPE = "│   "
_SPACE = "    "
_GAP = "  "


def render_status(
    status: ActorStatus, *, now: dt.datetime | None = None, error_width: int = 60
) -> str:
    """Render a status snapshot and its children as a text tree, one line per actor.

    Each line has these columns, aligned across the whole tree: the name
    (indented under its parent with ``├──``/``└──``/``│``), the state, the
    iteration (``#12``, for loops), when the next iteration is due relative to
    ``now`` (``in 4.2s``, ``in 12m 05s``, ``due now``, or ``-`` for a loop
    that is not scheduled; see `format_relative`), the lease of an actor that
    has one (``lease held fence 3 by host:pid:ab12``, ``lease standby``), the failure and
    restart counts, and the last error, cut to ``error_width`` characters
    with ``…`` and kept on one line. A column that is empty on every line
    (no loop in the tree, say) is left out. Lines carry no trailing spaces
    and the text has no final newline.

    Args:
        status: the snapshot to draw (its ``children`` are drawn below it).
        now: the instant "in 4.2s" counts from (aware). ``None`` reads the
            wall clock of the running event loop (the virtual one under
            `supervised_loops.testing`), else the system clock; pass it
            to keep rendering pure.
        error_width: the most characters of the last error to show; >= 1.

    Returns:
        The tree as text.

    Raises:
        TypeError: ``status`` is not an ActorStatus, ``now`` not a datetime,
            ``error_width`` not an int.
        ValueError: ``now`` is naive; ``error_width`` is not positive.
    """
    _validate.instance("status", status, ActorStatus, "an ActorStatus")
    width = _validate.positive_int("error_width", error_width)
    now = _wall_now() if now is None else _aware("now", now)
    rows: list[list[str]] = []
    _collect(status, "", "", now, width, rows)
    columns = len(rows[0])
    widths = [max(len(row[column]) for row in rows) for column in range(columns)]
    # The last column (the error) is never padded; empty columns are dropped.
    kept = [column for column in range(columns) if widths[column]]
    lines = []
    for row in rows:
        cells = [
            row[column] if column == columns - 1 else row[column].ljust(widths[column])
            for column in kept
        ]
        lines.append(_GAP.join(cells).rstrip())
    return "\n".join(lines)


def _collect(
    status: ActorStatus,
    lead: str,
    rest: str,
    now: dt.datetime,
    error_width: int,
    rows: list[list[str]],
) -> None:
    """Append the row of ``status`` (prefixed by ``lead``), then its children's."""
    is_loop = status.kind == "loop"
    if status.next_iteration is not None:
        upcoming = format_relative(status.next_iteration, now)
    else:
        upcoming = "-" if is_loop else ""
    rows.append(
        [
            lead + status.name,
            str(status.state),
            f"#{status.current_loop}" if is_loop else "",
            upcoming,
            "" if status.lease is None else f"lease {status.lease}",
            f"failures {status.failures}",
            f"restarts {status.restarts}",
            ""
            if status.last_error is None
            else "last error: " + _cut(status.last_error, error_width),
        ]
    )
    children = status.children
    for index, child in enumerate(children):
        last = index == len(children) - 1
        _collect(
            child,
            rest + (_LAST if last else _BRANCH),
            rest + (_SPACE if last else _PIPE),
            now,
            error_width,
            rows,
        )


def _cut(text: str, width: int) -> str:
    # One actor, one line: a multi-line message must not break the tree.
    flat = " ".join(text.split())
    if len(flat) <= width:
        return flat
    return flat[: width - 1] + "…"


def format_relative(moment: dt.datetime, now: dt.datetime) -> str:
    """Say when ``moment`` comes, relative to ``now``, in a short human form.

    Under a minute it is tenths of a second (``in 4.2s``); then minutes and
    seconds (``in 12m 05s``), hours and minutes (``in 3h 07m``), days and
    hours (``in 2d 04h``), each part rounded down. A moment less than 0.05
    seconds ahead, or already past, is ``due now`` (a loop that is behind
    schedule runs at once).

    Args:
        moment: an aware datetime.
        now: an aware datetime.

    Raises:
        TypeError: ``moment`` or ``now`` is not a datetime.
        ValueError: ``moment`` or ``now`` is naive.
    """
    seconds = (_aware("moment", moment) - _aware("now", now)).total_seconds()
    if seconds < 0.05:
        return "due now"
    if seconds < 59.95:  # below this, one decimal never rounds up to "60.0s"
        return f"in {seconds:.1f}s"
    whole = max(60, math.floor(seconds))
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"in {minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"in {hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"in {days}d {hours:02d}h"


def _aware(name: str, moment: object) -> dt.datetime:
    checked = _validate.instance(name, moment, dt.datetime, "an aware datetime")
    if checked.utcoffset() is None:
        _validate.value_error(name, "an aware datetime", moment)
    return checked


def _wall_now() -> dt.datetime:
    try:
        event_loop = asyncio.get_running_loop()
    except RuntimeError:  # rendering outside asyncio, e.g. in the console command
        return SystemClock().wall()
    return get_clock(event_loop).wall()
