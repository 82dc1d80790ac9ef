"""Answering the asks that wait on a run: acknowledgements and refusals.

A request asked of an actor (``ask(Stop())``, ``ask(Restart())``, ...) is
answered when it has taken effect: an `Ack`, or `ActorStopped` when the run
ended first. The lists of pending asks live on the run records; these are
the few ways every kind answers them (re-exported by `core.runnable`).

May import: the pure top-level modules (``messages``, ``errors``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from ..errors import ActorStopped
from ..messages import Ack

__all__ = ["Pending", "abandon", "acknowledge", "acknowledge_when_ready"]

Pending = list[tuple[Any, "asyncio.Future[Any]"]]


def acknowledge(pending: Pending | None, iteration: int, upcoming: Any) -> None:
    """Answer every ask in ``pending`` with an `Ack`, and empty it."""
    if not pending:
        return
    for message, future in pending:
        if not future.done():
            future.set_result(Ack(message, iteration, upcoming))
    pending.clear()


def acknowledge_when_ready(
    ready: asyncio.Future[bool], message: Any, reply: Any, path: str
) -> None:
    """Answer ``reply`` once ``ready`` resolves: ``Ack(message, 0, None)``, or `ActorStopped`.

    The acknowledgement of a Restart of a kind with no schedule (a worker,
    a supervisor): the new run is ready, or it ended first.
    """

    def answer(_future: asyncio.Future[bool]) -> None:
        if not reply.done():
            if ready.result():
                reply.set_result(Ack(message, 0, None))
            else:
                reply.set_exception(ActorStopped(path, message))

    ready.add_done_callback(answer)


def abandon(pending: Pending | None, path: str) -> None:
    """Answer every ask in ``pending`` with `ActorStopped`, and empty it."""
    if not pending:
        return
    for message, future in pending:
        if not future.done():
            future.set_exception(ActorStopped(path, message))
    pending.clear()
