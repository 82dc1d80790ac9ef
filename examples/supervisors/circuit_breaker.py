"""A circuit-breaker supervisor: stop retrying after N failures, alert, probe later.

A loop polls an upstream service that goes down for a while. Its
``ConnectionError`` is whitelisted, so on its own the loop would retry with
backoff forever, hammering a service that is down. The supervisor breaks the
circuit instead:

* ``should_retry`` lets a child retry at most ``THRESHOLD`` consecutive
  failures; the next one is escalated (the circuit *opens*);
* ``on_child_failure`` raises an alert (here: a line in ``alerts``);
* ``decide`` parks the child in quarantine; the probe after ``COOLDOWN``
  seconds is the *half-open* state (``child.is_on_probation()``): if it
  works the circuit closes, if it fails once it opens again at once.

Its sibling, a heartbeat, never notices. Run it with
``python examples/supervisors/circuit_breaker.py`` (about 1.5 seconds).
"""

from __future__ import annotations

import asyncio

from supervised_loops import (
    Child,
    Directive,
    ExponentialBackoff,
    Quarantine,
    Supervisor,
    child,
    loop,
)

#: Consecutive failures a child may retry before the circuit opens.
THRESHOLD = 3
#: Seconds the circuit stays open before a probe (half-open).
COOLDOWN = 0.5
#: Seconds the upstream is down at the start.
OUTAGE = 0.6


class CircuitBreaker(Supervisor):
    """Retries a child up to ``threshold`` times, then alerts and parks it for a cooldown."""

    backoff = ExponentialBackoff(base=0.02, jitter=False)  # 0.04 s, 0.08 s, 0.16 s, ...

    def __init__(self, *children: object, threshold: int, cooldown: float, name: str) -> None:
        # Every child gets the cooldown as its quarantine probe interval.
        super().__init__(
            *children,  # type: ignore[arg-type]
            quarantine=Quarantine(max_restarts=0, max_seconds=cooldown, probe_every=cooldown),
            name=name,
        )
        self.threshold = threshold
        self.alerts: list[str] = []

    def should_retry(self, child: Child, error: BaseException, attempt: int) -> bool | None:
        if child.is_on_probation() or attempt > self.threshold:
            return False  # half-open and failed, or too many failures: open the circuit
        return None  # the child's own rule (its whitelist) decides

    async def on_child_failure(self, child: Child, error: BaseException) -> None:
        self.alerts.append(f"ALERT circuit open for {child.path!r}: {error}")

    def decide(self, child: Child, error: BaseException) -> Directive:
        return Directive.QUARANTINE  # probed after the cooldown: half-open


class Upstream:
    """A service that refuses connections until ``up_at`` (event-loop seconds)."""

    def __init__(self, up_at: float) -> None:
        self.up_at = up_at
        self.calls = 0

    async def fetch(self) -> str:
        self.calls += 1
        if asyncio.get_running_loop().time() < self.up_at:
            raise ConnectionError("connection refused")
        return "data"


def build(upstream: Upstream, log: list[str]) -> CircuitBreaker:
    """The tree: a poller of the upstream, and a heartbeat that must not notice."""

    @loop(seconds=0.1)
    async def poller() -> None:
        log.append(f"poller got {await upstream.fetch()}")

    @loop(seconds=0.25)
    async def heartbeat() -> None:
        log.append("heartbeat")

    return CircuitBreaker(
        child(poller), child(heartbeat), threshold=THRESHOLD, cooldown=COOLDOWN, name="breaker"
    )


async def main() -> list[str]:
    """Run the scenario for 1.45 s; return what happened, in order."""
    log: list[str] = []
    upstream = Upstream(up_at=asyncio.get_running_loop().time() + OUTAGE)
    tree = build(upstream, log)
    async with tree:
        await asyncio.sleep(1.45)
    polled = sum(line == "poller got data" for line in log)
    return [
        *tree.alerts,
        f"upstream called {upstream.calls} times",
        f"heartbeats: {log.count('heartbeat')}",
        f"poller succeeded {polled} times after the circuit closed",
    ]


if __name__ == "__main__":
    for line in asyncio.run(main()):
        print(line)
