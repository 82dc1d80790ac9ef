"""Liveness and readiness of a tree, as Kubernetes probes ask them.

Readiness: the tree has finished starting (every child started, in order)
and is still running. Liveness: the tree runs and no *significant* child
(``child(..., significant=True)``: one the service cannot do without) is
failed, quarantined or otherwise ended. A child that is being restarted,
or a non-significant one parked in quarantine, leaves the service alive:
restarting is the supervisor's job, and a supervisor that gives up fails
itself, which the probe sees. The third liveness condition, an event loop
that answers, is met by whoever asks on that loop: an HTTP probe served by
the service's own event loop gets no answer at all when the loop is stuck.

The decisions (`liveness`, `readiness`) are pure functions of a status
snapshot and the set of significant paths, tested as tables; `check` takes
the snapshot of a live tree.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator

import attrs

from ..core.actor import Actor
from ..messages import ActorStatus, State
from ..supervision.face import Supervisor

__all__ = ["Health", "check", "liveness", "readiness", "significant_paths"]

_DOWN = frozenset({State.IDLE, State.STOPPED, State.CANCELLED, State.FAILED, State.QUARANTINED})


@attrs.frozen
class Health:
    """A probe's answer: ``ok``, and one line saying why."""

    ok: bool
    reason: str


def readiness(status: ActorStatus) -> Health:
    """Ready when the root has finished starting and is running."""
    state = status.state
    if state is State.STARTING:
        return Health(False, f"{status.path} is starting")
    if state in _DOWN or state is State.STOPPING:
        return Health(False, f"{status.path} is {state.value}")
    return Health(True, f"{status.path} is ready")


def liveness(status: ActorStatus, significant: Collection[str]) -> Health:
    """Alive when the root runs and no significant actor under it has ended.

    Args:
        status: the root's status snapshot (with its children).
        significant: the paths of the significant children.
    """
    if status.state in _DOWN:
        reason = f"{status.path} is {status.state.value}"
        if status.last_error:
            reason += f" ({status.last_error})"
        return Health(False, reason)
    for actor in _walk(status):
        if actor.path in significant and actor.state in _DOWN:
            return Health(False, f"significant child {actor.path} is {actor.state.value}")
    return Health(True, f"{status.path} is {status.state.value}")


def significant_paths(tree: Actor) -> frozenset[str]:
    """The paths of every significant child in ``tree``, at any depth."""
    found: set[str] = set()
    if isinstance(tree, Supervisor):
        _collect(tree, found)
    return frozenset(found)


def check(tree: Actor) -> tuple[Health, Health]:
    """``(liveness, readiness)`` of a live tree, from one snapshot."""
    status = tree.status()
    return liveness(status, significant_paths(tree)), readiness(status)


def _collect(supervisor: Supervisor, found: set[str]) -> None:
    for info in supervisor.which_children():
        if info.significant:
            found.add(info.path)
        if info.kind == "supervisor":
            child = supervisor.lookup(info.name)
            if isinstance(child, Supervisor):
                _collect(child, found)


def _walk(status: ActorStatus) -> Iterator[ActorStatus]:
    for child in status.children:
        yield child
        yield from _walk(child)
