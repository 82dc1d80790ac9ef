"""``ctl events`` and ``ctl status --watch``: commands that go on until Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Mapping
from typing import Any

from .control_client import ControlClient
from .ctl_output import print_reply, status_from_json
from .live_view import LIVE_REFRESH_SECONDS
from .render import render_status

__all__ = ["describe_event_json", "follow_events", "watch_status"]


def describe_event_json(event: Mapping[str, Any]) -> str:
    """One line for a streamed event: ``<at> demo/poller: ActorEnded cancelled=False``."""
    fields = {k: v for k, v in event.items() if k not in ("type", "path", "at")}
    details = ", ".join(f"{key}={value!r}" for key, value in fields.items())
    line = f"{event.get('at')} {event.get('path')}: {event.get('type')}"
    return line + (f" {details}" if details else "")


async def follow_events(client: ControlClient, request: Mapping[str, Any], raw: bool) -> int:
    """Print the events the service streams until it ends the stream (or Ctrl-C).

    Returns 1 when the service refused the request (the error is printed),
    0 when the service ended the stream. Cancelled, the stream is closed.
    """
    first = True
    async for item in client.stream(request):
        if first:
            first = False
            if not item.get("ok"):
                return print_reply(item, raw)
            continue
        print(json.dumps(item) if raw else describe_event_json(item), flush=True)
    return 0


async def watch_status(client: ControlClient, request: Mapping[str, Any], raw: bool) -> int:
    """Redraw the status every second until Ctrl-C (cancelled: it stops at once).

    On a terminal the tree is redrawn in place; otherwise each snapshot is
    printed after the previous one, separated by a blank line. Returns 1 on
    an error reply.
    """
    in_place = sys.stdout.isatty() and not raw
    while True:
        reply = await client.request(request)
        if not reply.get("ok"):
            return print_reply(reply, raw)
        if raw:
            print(json.dumps(reply), flush=True)
        else:
            text = render_status(status_from_json(reply["result"]))
            if in_place:
                sys.stdout.write("\x1b[H\x1b[J" + text + "\n")
            else:
                sys.stdout.write(text + "\n\n")
            sys.stdout.flush()
        await asyncio.sleep(LIVE_REFRESH_SECONDS)
