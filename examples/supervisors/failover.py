"""A supervisor that restarts a child with new arguments after a failure: failover.

A loop fetches from one endpoint, given as its start argument. When the
endpoint fails, ``on_child_failure`` moves the child to the next endpoint of
the list with ``child.set_args(...)``, and the restart that follows (the
default decision for a permanent child) starts it with that argument.

Run it with ``python examples/supervisors/failover.py`` (well under a second).
"""

from __future__ import annotations

import asyncio

from supervised_loops import Child, Supervisor, child, loop

ENDPOINTS = ("https://primary.example", "https://secondary.example", "https://tertiary.example")
DOWN = {"https://primary.example", "https://secondary.example"}


class EndpointDown(Exception):
    """The endpoint answered with an error (not a transient network error)."""


class FailoverSupervisor(Supervisor):
    """Restarts a failed child on the next endpoint of its list."""

    def __init__(self, *children: object, endpoints: tuple[str, ...], name: str) -> None:
        super().__init__(*children, max_restarts=len(endpoints), max_seconds=10.0, name=name)  # type: ignore[arg-type]
        self.endpoints = endpoints
        self.moves: list[str] = []

    async def on_child_failure(self, child: Child, error: BaseException) -> None:
        current = child.args[0]
        following = self.endpoints[(self.endpoints.index(current) + 1) % len(self.endpoints)]
        child.set_args(following)  # the restart below uses it
        self.moves.append(f"{child.name}: {current} failed ({error}); next: {following}")


async def main() -> list[str]:
    """Fetch for a moment; return the failovers and what was fetched, in order."""
    fetched: list[str] = []

    @loop(seconds=0.1)
    async def fetcher(endpoint: str) -> None:
        if endpoint in DOWN:
            raise EndpointDown(f"{endpoint} answered 500")
        fetched.append(endpoint)

    @fetcher.error
    async def quiet(error: BaseException) -> None:
        pass  # the supervisor reports the failover

    tree = FailoverSupervisor(
        child(fetcher, args=(ENDPOINTS[0],)), endpoints=ENDPOINTS, name="failover"
    )
    async with tree:
        await asyncio.sleep(0.35)
    return [*tree.moves, f"fetched {len(fetched)} times from {sorted(set(fetched))}"]


if __name__ == "__main__":
    for line in asyncio.run(main()):
        print(line)
