"""The ``events`` request: a control connection turned into a stream of events."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any

from ..events import Event
from .control_protocol import encode_reply, event_to_json

__all__ = ["stream_events"]


async def stream_events(
    actor: Any,
    types: Collection[str],
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    write_timeout: float,
) -> None:
    """Write the events of ``actor`` and its subtree, one JSON line each, until the client stops.

    Only events whose type name is in ``types`` are written (all when it is
    empty). The stream ends when the client closes its side or sends
    anything, when the subscription ends, or when the client does not read
    for ``write_timeout`` seconds (TimeoutError). The subscription is
    bounded: a client that falls behind gets an ``EventsDropped`` line
    instead of slowing the tree. Cancelled, it unsubscribes and returns
    nothing more.
    """
    gone = asyncio.ensure_future(reader.read(1))
    try:
        async with actor.events() as events:
            iterator = aiter(events)
            while True:
                following: asyncio.Future[Event] = asyncio.ensure_future(anext(iterator))
                await asyncio.wait((following, gone), return_when=asyncio.FIRST_COMPLETED)
                if not following.done():
                    following.cancel()
                    return
                try:
                    event = following.result()
                except StopAsyncIteration:
                    return
                if types and type(event).__name__ not in types:
                    continue
                writer.write(encode_reply(event_to_json(event)))
                async with asyncio.timeout(write_timeout):
                    await writer.drain()
    finally:
        gone.cancel()
