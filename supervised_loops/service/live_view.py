"""The live view of ``supervised-loops run``: the tree redrawn in place on a terminal."""

from __future__ import annotations

import asyncio
import logging
import shutil
import traceback
from collections import deque
from typing import TextIO

from ..messages import State
from ..supervision.face import Supervisor
from .render import render_status

__all__ = ["LIVE_LOG_RECORDS", "LIVE_REFRESH_SECONDS", "LiveView", "short_record"]

#: Seconds between two redraws of the live tree.
LIVE_REFRESH_SECONDS = 1.0

#: Log records the live view keeps (it shows as many as fit the screen).
LIVE_LOG_RECORDS = 200

#: The footer while the tree shuts down.
STOPPING_FOOTER = "(shutting down; Ctrl-C again cancels the rest, a third cuts clean-ups short)"


class LiveView:
    """The tree drawn in place on a terminal, once a second, with the latest log lines.

    The view takes the terminal's alternate screen (as ``top`` does), so the
    shell's own screen and scrollback are left as they were, and redraws by
    moving the cursor home and overwriting: each line is cut to the
    terminal's width and cleared to its end, and the rest of the screen is
    cleared below, so nothing flickers, wraps or lingers. Log records that
    would go to the terminal (root handlers writing to a tty) are held and
    shown under the tree instead of being scribbled over it, a record with a
    traceback as its message, its last frame and its exception (see
    `short_record`); when the view closes they go back to those handlers
    in full (the latest `LIVE_LOG_RECORDS` of them), followed by the final
    tree on the normal screen. While the root shuts down, the footer says
    that a second Ctrl-C forces it.
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
        status = self._tree.status()
        lines = render_status(status).splitlines()
        footer = STOPPING_FOOTER if status.state is State.STOPPING else self._footer
        lines += ["", footer] if footer else []
        room = height - 1 - len(lines)  # the last row stays empty: no scrolling
        if room > 1 and self._records:
            shown: list[str] = []
            for record in self._records:
                shown.extend(short_record(record, self._capture))
            lines.append("")
            lines.extend(shown[-(room - 1) :])
        lines = [line[:width] for line in lines[: max(height - 1, 1)]]
        return "\x1b[H" + "".join(line + "\x1b[K\n" for line in lines) + "\x1b[J"

    def draw(self) -> None:
        """Redraw the view at the terminal's current size."""
        size = shutil.get_terminal_size()
        self._stream.write(self.frame(size.columns, size.lines))
        self._stream.flush()

    async def run(self) -> None:
        """Redraw once a second until cancelled (cancellation ends it at once)."""
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


def short_record(record: logging.LogRecord, handler: logging.Handler) -> list[str]:
    """The lines the live view shows for one record, each free of line breaks.

    The record formatted as ``handler`` would, but a traceback is cut down to
    the frame that raised and the exception: ``  at file.py:12 in poll`` and
    ``  ValueError: bad``. The full traceback reaches the log handlers when
    the view closes.
    """
    exc_info = record.exc_info
    saved = record.exc_info, record.exc_text, record.stack_info
    record.exc_info = record.exc_text = record.stack_info = None
    try:
        head = handler.format(record)
    finally:
        record.exc_info, record.exc_text, record.stack_info = saved
    lines = [" ".join(head.split())]
    if exc_info and exc_info[1] is not None:
        error = exc_info[1]
        frames = traceback.extract_tb(error.__traceback__)
        if frames:
            last = frames[-1]
            lines.append(f"  at {last.filename}:{last.lineno} in {last.name}")
        text = "".join(traceback.format_exception_only(type(error), error))
        lines.append("  " + " ".join(text.split()))
    return lines


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
