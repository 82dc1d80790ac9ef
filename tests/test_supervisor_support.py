"""Shared pieces of the supervisor tests (no tests here).

:class:`Journal` records what children do, in order; :func:`probe` builds a
Loop whose start and stop land in a journal and whose next iteration can be
told to fail, so a test states exactly what happened and in which order.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Any

from supervised_loops import Every, Loop
from supervised_loops.events import Event


class Boom(Exception):
    """An application error: never whitelisted, so it escalates."""


def exactly(message: str) -> str:
    """A ``pytest.raises(match=...)`` pattern accepting ``message`` and nothing else."""
    return f"^{re.escape(message)}$"


class Journal:
    """What happened, in order: ``"start a"``, ``"stop a"``, ``"fail a"``, ..."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def note(self, line: str) -> None:
        self.lines.append(line)

    def take(self) -> list[str]:
        """Return the lines so far and forget them."""
        lines, self.lines = self.lines, []
        return lines


class Probe:
    """A Loop plus levers: fail the next iteration, end the run, count iterations."""

    def __init__(
        self,
        journal: Journal,
        name: str,
        *,
        seconds: float = 1.0,
        count: int | None = None,
        handler: bool = True,
    ) -> None:
        self.journal = journal
        self.name = name
        self.iterations = 0
        self.handled: list[BaseException] = []
        self._next_error: BaseException | None = None
        self._fail_every = False

        async def body() -> None:
            self.iterations += 1
            error = self._next_error
            if error is not None:
                if not self._fail_every:
                    self._next_error = None
                journal.note(f"fail {name}")
                raise error

        body.__name__ = name
        self.loop = Loop(body, schedule=Every(seconds=seconds), count=count, name=name)

        @self.loop.before_loop
        async def before() -> None:
            journal.note(f"start {name}")

        @self.loop.after_loop
        async def after() -> None:
            journal.note(f"stop {name}")

        if handler:

            @self.loop.error
            async def on_error(error: BaseException) -> None:
                self.handled.append(error)

    def fail_next(self, error: BaseException) -> None:
        """Make the next iteration raise ``error``."""
        self._next_error = error

    def fail_always(self, error: BaseException) -> None:
        """Make every iteration raise ``error``."""
        self._next_error = error
        self._fail_every = True

    def heal(self) -> None:
        """Stop failing."""
        self._next_error = None
        self._fail_every = False


async def settle(rounds: int = 20) -> None:
    """Let every ready callback and task run without moving virtual time."""
    for _ in range(rounds):
        await asyncio.sleep(0)


class Recorder:
    """Collects the events of a subscription in the background."""

    def __init__(self, source: Any) -> None:
        self.events: list[Event] = []
        self._subscription = source.events()
        self._task = asyncio.get_running_loop().create_task(self._collect())

    async def _collect(self) -> None:
        async for event in self._subscription:
            self.events.append(event)

    def of(self, kind: type[Event]) -> list[Any]:
        return [event for event in self.events if isinstance(event, kind)]

    async def close(self) -> None:
        await settle()
        self._subscription.close()
        await self._task


def names(predicate: Callable[[str], bool], lines: list[str]) -> list[str]:
    return [line for line in lines if predicate(line)]
