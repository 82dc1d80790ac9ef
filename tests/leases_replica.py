"""One replica for the real-server lease tests and the failover benchmark.

Run as ``python tests/leases_replica.py --backend redis --url ... --name ...``.
It keeps one lease and, while it holds it, writes to a fenced sink (a file
that remembers the largest fence it accepted and rejects smaller ones) every
``--write-every`` seconds. With ``--mode keeper`` (the default) a
`LeaseKeeper` drives a writing task that ``on_lost`` cancels at once; with
``--mode loop`` the writer is a ``loop(lease=...)`` body, and acquisitions
and losses are read from the loop's events. Either way the writer itself
does not check its lease, so a write after a loss would show up as a stale
attempt.

Every step is printed to stdout as one JSON line with ``time.monotonic()``
(the machine-wide clock the event loop uses, so lines from different
processes can be compared): ``ready``, ``acquired``, ``lost``, ``write``,
``stopped``. SIGTERM stops gracefully (the lease is released).
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from supervised_loops.leases import Grant, LeaseKeeper, LeaseSettings


def say(event: str, **fields: Any) -> None:
    line = json.dumps({"event": event, "pid": os.getpid(), "t": time.monotonic(), **fields})
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class FencedSink:
    """A store that rejects writes whose fence is smaller than one it accepted.

    Writers take an exclusive lock on a file, polled without blocking the
    event loop: a writer paused inside its write (SIGSTOP) holds the lock
    until it resumes, and the others wait for it asynchronously, as they
    would for a real store's row lock.
    """

    def __init__(self, directory: Path) -> None:
        self.state = directory / "sink.max"
        self.log = directory / "sink.log"

    async def write(self, fence: int) -> bool:
        with open(self.state, "a+") as state:  # noqa: ASYNC230 - a local file, no wait
            while True:
                try:
                    fcntl.flock(state, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    await asyncio.sleep(0.005)
            state.seek(0)
            text = state.read().strip()
            highest = int(text) if text else 0
            accepted = fence >= highest
            if accepted:
                state.seek(0)
                state.truncate()
                state.write(str(fence))
            with open(self.log, "a") as log:  # noqa: ASYNC230
                log.write(f"{fence} {os.getpid()} {time.monotonic()} {int(accepted)}\n")
            return accepted


def make_backend(arguments: argparse.Namespace) -> Any:
    if arguments.backend == "redis":
        from supervised_loops.leases import RedisBackend

        return RedisBackend(arguments.url)
    from supervised_loops.leases import PostgresBackend

    return PostgresBackend(
        arguments.url,
        mode="advisory" if arguments.backend == "postgres-advisory" else "lease",
        connect_kwargs={"server_settings": {"application_name": arguments.app_name}},
    )


async def main_loop(arguments: argparse.Namespace) -> None:
    """The writer as a loop with a lease (what users write)."""
    from supervised_loops import loop
    from supervised_loops.leases import Lease, LeaseAcquired, LeaseLost

    sink = FencedSink(Path(arguments.sink)) if arguments.sink else None
    backend = make_backend(arguments)
    lease = Lease(
        name=arguments.name,
        backend=backend,
        settings=LeaseSettings(ttl=arguments.ttl),
        holder=arguments.holder,
    )

    @loop(seconds=arguments.write_every, lease=lease)
    async def write() -> None:
        keeper = write.lease
        assert keeper is not None
        grant = keeper.grant
        assert grant is not None
        began = time.monotonic()
        accepted = await sink.write(grant.fence) if sink is not None else True
        say(
            "write",
            fence=grant.fence,
            accepted=accepted,
            began=began,
            valid_until=grant.valid_until,
        )

    async def report() -> None:
        async with write.events() as events:
            async for event in events:
                if isinstance(event, LeaseAcquired):
                    grant = write.lease.grant if write.lease else None
                    until = grant.valid_until if grant else 0.0
                    say("acquired", fence=event.fence, holder=event.holder, valid_until=until)
                elif isinstance(event, LeaseLost):
                    say("lost", reason=event.reason)

    def dump() -> None:
        # SIGUSR1: the lease's state and the tasks, for a test that failed.
        keeper = write.lease
        task = keeper._task if keeper is not None else None
        print(f"DUMP keeper={keeper!r} task={task!r} running={write.is_running()}", file=sys.stderr)
        for each in asyncio.all_tasks():
            print(f"DUMP task {each!r}", file=sys.stderr)
        sys.stderr.flush()

    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, dump)
    reporter = asyncio.get_running_loop().create_task(report())
    await asyncio.sleep(0)  # subscribed before the first event
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    write.start()
    say("ready", holder=arguments.holder or "")
    await stop.wait()
    write.stop()
    await asyncio.sleep(0.2)  # the release follows the run's end
    reporter.cancel()
    await backend.aclose()
    say("stopped")


async def main(arguments: argparse.Namespace) -> None:
    if arguments.mode == "loop":
        await main_loop(arguments)
        return
    loop = asyncio.get_running_loop()
    sink = FencedSink(Path(arguments.sink)) if arguments.sink else None
    writer: asyncio.Task[None] | None = None

    async def write_while_held(grant: Grant) -> None:
        while True:
            await asyncio.sleep(arguments.write_every)
            # The deadline the keeper has as the write begins (it moves with
            # every renewal of the same grant).
            began = time.monotonic()
            current = keeper.grant
            valid_until = (
                current.valid_until
                if current is not None and current.fence == grant.fence
                else grant.valid_until
            )
            accepted = await sink.write(grant.fence) if sink is not None else True
            say(
                "write",
                fence=grant.fence,
                accepted=accepted,
                began=began,
                valid_until=valid_until,
            )

    def acquired(grant: Grant) -> None:
        nonlocal writer
        say("acquired", fence=grant.fence, holder=grant.holder, valid_until=grant.valid_until)
        writer = loop.create_task(write_while_held(grant))

    def lost(reason: str) -> None:
        if writer is not None:
            writer.cancel()
        say("lost", reason=reason)

    backend = make_backend(arguments)
    settings = LeaseSettings(ttl=arguments.ttl)
    keeper = LeaseKeeper(
        arguments.name,
        backend,
        holder=arguments.holder,
        settings=settings,
        on_acquired=acquired,
        on_lost=lost,
    )
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    keeper.start()
    say("ready", holder=keeper.holder)
    await stop.wait()
    if writer is not None:
        writer.cancel()
    await keeper.stop()
    await backend.aclose()
    say("stopped")


if __name__ == "__main__":
    import faulthandler

    faulthandler.register(signal.SIGUSR2)  # a stack dump even if the event loop is stuck
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["redis", "postgres", "postgres-advisory"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--ttl", type=float, default=2.0)
    parser.add_argument("--holder", default=None)
    parser.add_argument("--sink", default=None)
    parser.add_argument("--write-every", type=float, default=0.05)
    parser.add_argument("--app-name", default="supervised_loops replica")
    parser.add_argument("--mode", choices=["keeper", "loop"], default="keeper")
    asyncio.run(main(parser.parse_args()))
