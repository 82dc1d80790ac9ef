"""How a run ended: one pure function from what happened to the `Exit` reported.

Every actor kind (Loop, worker, supervisor) ends a run the same way, and
what the parent is told depends only on how the task ends and on what was
asked of the run. The runner usually classifies from its last step, with
the outcome it is about to give its task (raise its error, end cancelled,
return: `core.runnable.Runnable._end_in_task`); the task's done callback
classifies from the finished task when the runner could not (a task
cancelled before its first step, ``KeyboardInterrupt``). Keeping that
decision in one function, with no event loop and no actor in sight, is what
keeps the kinds from drifting apart
(a copy that forgot that an unrequested ``CancelledError`` is a failure once
reported a crashed worker as a requested stop).

May import: the pure top-level modules (``messages``). Nothing else.
"""

from __future__ import annotations

from ..messages import Exit, ExitKind

__all__ = ["classify_exit"]


def classify_exit(
    *,
    escalated: BaseException | None,
    task_error: BaseException | None,
    task_cancelled: bool,
    stop_requested: bool,
    cancel_requested: bool,
) -> Exit:
    """The `Exit` a run reports to its parent.

    Args:
        escalated: the error the run escalated (its own bookkeeping), if any.
            It wins over everything else: an escalated ``CancelledError``
            nobody asked for makes the task look cancelled, but it is a
            failure.
        task_error: the exception the task ended with (``KeyboardInterrupt``,
            ``SystemExit``, or an error raised past the run's own handling).
        task_cancelled: the task ended (or is about to end) cancelled.
        stop_requested: a ``Stop`` (or ``Restart``, ``Cancel``) reached the run.
        cancel_requested: a ``Cancel`` (or ``Restart``, a cancellation of the
            task from outside) reached the run.

    Returns:
        ``FAILED`` with the error; else ``CANCELLED`` (requested) for a task
        that ended cancelled; else ``NORMAL``, requested when a stop or a
        cancel reached the run (a body that swallowed the cancellation and
        returned still ended because it was asked to).
    """
    if escalated is not None:
        return Exit(ExitKind.FAILED, escalated)
    if task_error is not None:
        return Exit(ExitKind.FAILED, task_error)
    if task_cancelled:
        return _CANCELLED
    return _REQUESTED if stop_requested or cancel_requested else _ENDED


# Exits are immutable, and all but a failure's are one of these: a tree of
# thousands of loops ending makes none.
_CANCELLED = Exit(ExitKind.CANCELLED, requested=True)
_REQUESTED = Exit(ExitKind.NORMAL, requested=True)
_ENDED = Exit(ExitKind.NORMAL)
