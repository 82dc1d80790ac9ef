"""The OTP verbs, as they run in the supervisor's own task.

`Supervisor.start_child` and the others queue one of these functions to the
supervisor's task (after whatever was queued before: exits being handled,
earlier verbs), so verbs never race each other or a restart. Their errors
are raised to the caller of the verb.

May import: the lower ``supervision`` modules and what they may import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import _validate
from ..core.actor import Actor
from ..errors import ActorStopped, ChildNotFound, ChildStartFailed
from ..events import ChildRestarted
from ..messages import ExitKind
from .child import Child
from .core import SupervisorCore
from .run import Started
from .specs import ChildSpec, RestartType

if TYPE_CHECKING:
    from .engine import SupervisorEngine

__all__ = [
    "delete_child",
    "find",
    "lookup",
    "restart_child",
    "start_child",
    "terminate_child",
]


def find(supervisor: SupervisorEngine, name: str) -> Child:
    """The record of the child named ``name``.

    Raises:
        TypeError: ``name`` is not a str.
        ChildNotFound: no child has this name.
    """
    record = supervisor._by_name.get(_validate.text("name", name))
    if record is None:
        raise ChildNotFound(supervisor.path, name)
    return record


def lookup(supervisor: SupervisorEngine, path: str) -> Actor:
    """The actor at ``path`` below ``supervisor`` (``""``: itself).

    Raises:
        ChildNotFound: nothing has this path.
    """
    actor: Actor = supervisor
    for part in path.split("/"):
        if not part:
            continue
        if not isinstance(actor, SupervisorCore):
            raise ChildNotFound(supervisor.path, path)
        record = actor._by_name.get(part)
        if record is None:
            raise ChildNotFound(supervisor.path, path)
        actor = record.actor
    return actor


async def start_child(supervisor: SupervisorEngine, spec: ChildSpec) -> Actor:
    """Adopt ``spec`` at the end and start it; a child failing to start is not kept."""
    supervisor._check_spec(spec, dict(supervisor._by_name))
    record = supervisor._adopt(spec)
    error = await _start_or_error(supervisor, record, "start_child()", restart=False)
    if error is not None:
        supervisor._remove(record)
        raise error
    return spec.actor


async def terminate_child(supervisor: SupervisorEngine, name: str) -> None:
    """Stop a child in three phases and keep it down; a temporary child is removed."""
    record = find(supervisor, name)
    record._unpark()
    record._keep_down()
    await supervisor._terminate(record)
    if record.spec.restart is RestartType.TEMPORARY:
        supervisor._remove(record)


async def restart_child(supervisor: SupervisorEngine, name: str) -> Actor:
    """Stop a child if it runs and start it again; a failed start keeps it down."""
    record = find(supervisor, name)
    if record._abandoned:
        raise RuntimeError(
            f"child {record.path!r} was reported unkillable and still runs; it cannot be restarted"
        )
    record._unpark()
    await supervisor._terminate(record)
    record._restarted()
    record.actor._emit(ChildRestarted, reason="restart_child")
    error = await _start_or_error(supervisor, record, "restart_child()", restart=True)
    if error is not None:
        record._keep_down()
        raise error
    return record.actor


async def _start_or_error(
    supervisor: SupervisorEngine, record: Child, verb: str, *, restart: bool
) -> ChildStartFailed | None:
    """Start a child for a verb; the error to raise if it failed before it was ready.

    Raises:
        ActorStopped: the supervisor was told to stop before the child was ready.
    """
    started = await supervisor._start(record, restart=restart)
    if started is Started.HALTED:
        raise ActorStopped(supervisor.path, verb)
    if started is Started.ENDED:
        exit = await supervisor._exit_of(record)
        if exit is not None and exit.kind is ExitKind.FAILED:
            await supervisor._consume_exit(record)
            error = ChildStartFailed(supervisor.path, record.name)
            error.__cause__ = exit.error
            return error
    return None


async def delete_child(supervisor: SupervisorEngine, name: str) -> None:
    """Forget a child that is not running."""
    record = find(supervisor, name)
    await supervisor._settle(record)
    if record.actor.is_running():
        raise RuntimeError(
            f"child {name!r} of supervisor {supervisor.path!r} is running; "
            "terminate_child() it first"
        )
    supervisor._remove(record)
