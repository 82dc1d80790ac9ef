"""Health for probes: is the tree ready, is it alive, and if not, why.

`assess` is a pure function of a status snapshot: the control socket's
``health`` command answers with it, and an HTTP endpoint or any other probe
can reuse it on the same inputs. `significant_paths` gathers, from a live
tree, which actors are significant (the one thing a snapshot does not say).

* **Ready** once the tree has finished starting (``started``) and nothing
  in the assessed subtree is still starting.
* **Live** while the assessed actor itself is running (not stopped, failed,
  quarantined or never started) and no significant actor below it is failed
  or quarantined. That the event loop answers at all within a bound is the
  asker's part: a probe that gets no answer in time reports the service as
  not live (``ctl health`` does).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Any

import attrs

from ..messages import ActorStatus, State
from ..supervision.face import Supervisor

__all__ = ["Health", "assess", "health_json", "significant_paths"]

_DOWN = frozenset({State.IDLE, State.STOPPED, State.CANCELLED, State.FAILED, State.QUARANTINED})
_BROKEN = frozenset({State.FAILED, State.QUARANTINED})


@attrs.frozen
class Health:
    """The verdict of `assess`.

    Attributes:
        ready: the tree has finished starting.
        live: the actor runs and no significant actor below it is broken.
        reason: one line saying why, meant for a probe's output.
    """

    ready: bool
    live: bool
    reason: str

    @property
    def ok(self) -> bool:
        """Ready and live: what an exit status 0 means."""
        return self.ready and self.live


def _walk(status: ActorStatus) -> Iterator[ActorStatus]:
    yield status
    for child in status.children:
        yield from _walk(child)


def assess(status: ActorStatus, *, started: bool, significant: Collection[str] = ()) -> Health:
    """Say whether the actor of ``status`` (and what is below it) is ready and live.

    Args:
        status: the snapshot of the actor assessed (the root, or a subtree).
        started: whether the tree has finished starting.
        significant: the paths of the significant actors (see
            `significant_paths`); a failed or quarantined one makes the
            tree not live, another one does not.

    Returns:
        The `Health`, whose ``reason`` names the first problem found, or
        says how many actors run when there is none.
    """
    if status.state in _DOWN:
        return Health(ready=started, live=False, reason=f"{status.path!r} is {status.state}")
    broken = [
        actor
        for actor in _walk(status)
        if actor is not status and actor.state in _BROKEN and actor.path in significant
    ]
    if broken:
        first = broken[0]
        error = f" ({first.last_error})" if first.last_error else ""
        more = f" and {len(broken) - 1} more" if len(broken) > 1 else ""
        reason = f"significant {first.path!r} is {first.state}{error}{more}"
        return Health(ready=started, live=False, reason=reason)
    starting = [actor.path for actor in _walk(status) if actor.state is State.STARTING]
    if not started or starting:
        where = f": {starting[0]!r} is starting" if starting else ""
        return Health(ready=False, live=True, reason=f"{status.path!r} is still starting{where}")
    running = sum(1 for actor in _walk(status) if actor.state not in _DOWN)
    return Health(ready=True, live=True, reason=f"{status.path!r} is up ({running} actors running)")


def health_json(health: Health) -> dict[str, Any]:
    """The ``result`` of a ``health`` reply."""
    return {
        "ready": health.ready,
        "live": health.live,
        "healthy": health.ok,
        "reason": health.reason,
    }


def significant_paths(tree: Supervisor) -> frozenset[str]:
    """The paths of every significant actor in ``tree``, at any depth."""
    found: set[str] = set()
    pending = [tree]
    while pending:
        supervisor = pending.pop()
        for info in supervisor.which_children():
            if info.significant:
                found.add(info.path)
        for info in supervisor.which_children():
            actor = supervisor.lookup(info.name)
            if isinstance(actor, Supervisor):
                pending.append(actor)
    return frozenset(found)
