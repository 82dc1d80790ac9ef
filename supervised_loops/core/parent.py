"""The parent protocol: what a supervising actor offers the actors below it.

An actor only knows that it may have a parent (`Actor.parent`); what it may
ask of that parent is listed here, so that the mailbox (`core.actor`) stays
free of supervision and the runnable base (`core.runnable`) calls a small,
named interface. `supervised_loops.Supervisor` is the implementation; an
actor with no parent behaves as discord.ext.tasks does (its own retry
answer, the default backoff, nobody told of its exit).

Every call is synchronous and made from the child's side:

* `Parent._on_child_exit` - the last step of every run: which run ended
  (its run id) and how (`Exit`). Called from the run's last step in its
  task (nothing is awaited after it), or from the task's done callback.
* `Parent._on_child_ready` - the run has become ready (a supervisor waiting
  to start the next sibling wakes at once).
* `Parent._child_should_retry` - in the child's task, before it retries or
  escalates a failed iteration; the parent has the last word.
* `Parent._child_backoff` - the retry backoff of a child with none of its own.

May import: ``core.actor`` and the pure top-level modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ActorNotRunning
from .actor import Actor

if TYPE_CHECKING:
    from ..backoff import ExponentialBackoff
    from ..messages import Exit

__all__ = ["Parent", "orphan_reason", "refuse_orphan_start"]


class Parent(Actor):
    """An actor that supervises others (the abstract side of the tree link)."""

    __slots__ = ()

    def _on_child_exit(self, child: Actor, run_id: int, exit: Exit) -> None:
        """Run ``run_id`` of ``child`` ended as ``exit`` (from its last step, see above)."""
        raise NotImplementedError

    def _on_child_ready(self, child: Actor) -> None:
        """The latest run of ``child`` has become ready (or ended before it did)."""
        raise NotImplementedError

    def _child_should_retry(
        self, child: Actor, error: BaseException, attempt: int, default: bool
    ) -> bool:
        """Whether ``child`` retries a failed iteration; ``default`` is its own answer."""
        raise NotImplementedError

    def _child_backoff(self, child: Actor) -> ExponentialBackoff | None:
        """The retry backoff for ``child`` when it has none of its own (None: the default)."""
        raise NotImplementedError


def orphan_reason(actor: Actor) -> str | None:
    """Why ``actor`` may not start now, or None: its supervisor is not running.

    A child started (by a ``Restart`` message, or a direct ``start()``)
    while its supervisor is stopped would run outside its tree: nobody would
    stop it at shutdown, and its after_loop would run only in asyncio's
    teardown. The supervisor is to be restarted first, which starts its
    children again.
    """
    parent = actor.parent
    if parent is None or parent._admits_starts():
        return None
    return f"{parent.path} is stopped: restart it first"


def refuse_orphan_start(actor: Actor, call: str) -> None:
    """Refuse a direct start (``call``: ``"start()"``) that `orphan_reason` forbids.

    Raises:
        ActorNotRunning: the supervisor is stopped (the error a ``Restart``
            message gets, with the same reason).
    """
    reason = orphan_reason(actor)
    if reason is not None:
        raise ActorNotRunning(actor.path, call, reason)
