"""Exceptions that callers are expected to catch.

Misuse (a bad argument, a call in the wrong state) raises the builtins
``TypeError``, ``ValueError`` and ``RuntimeError``; the classes here are for
conditions a correct program still meets at run time.

Every class survives pickling with its message and attributes (a supervised
process may report an error to another process, and ``multiprocessing`` and
``concurrent.futures`` pickle what a task raised). Like any exception,
``__cause__``, ``__context__`` and the traceback are not pickled.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ActorNotRunning",
    "ActorStopped",
    "AskTimeout",
    "ChildNotFound",
    "ChildStartFailed",
    "MailboxFull",
    "RestartIntensityExceeded",
    "UnhandledMessage",
]


def _reduce(error: BaseException) -> tuple[Any, ...]:
    # BaseException pickles as cls(*args), but these classes take their
    # context as arguments and build the message from it: rebuild from the
    # message and restore the attributes instead of calling __init__ again.
    return (_restore, (type(error), error.args, error.__dict__))


def _restore(cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    error = cls.__new__(cls, *args)
    BaseException.__init__(error, *args)
    error.__dict__.update(state)
    return error


class ActorNotRunning(RuntimeError):
    """A message that needs a running actor was sent to one that is not running.

    Raised by ``ask``; with ``tell`` the message becomes a dead letter instead.

    Attributes:
        actor: the path of the actor.
        message: the message that could not be delivered.
        reason: why, when there is more to say than "not running" (a
            ``Restart`` of a child whose supervisor is stopped), or None.
    """

    __reduce__ = _reduce

    def __init__(self, actor: str, message: object, reason: str | None = None) -> None:
        text = f"actor {actor!r} is not running; {message!r} was not delivered"
        super().__init__(text if reason is None else f"{text}: {reason}")
        self.actor = actor
        self.message = message
        self.reason = reason


class ActorStopped(RuntimeError):
    """The actor ended before it could answer a message it had accepted.

    Attributes:
        actor: the path of the actor.
        message: the message left without a reply.
    """

    __reduce__ = _reduce

    def __init__(self, actor: str, message: object) -> None:
        super().__init__(f"actor {actor!r} ended before answering {message!r}")
        self.actor = actor
        self.message = message


class MailboxFull(RuntimeError):
    """The actor's user-message lane already holds ``mailbox_size`` messages.

    Raised by ``ask``; with ``tell`` the message becomes a dead letter
    instead. Control messages are never refused this way.

    Attributes:
        actor: the path of the actor.
        message: the message that was refused.
    """

    __reduce__ = _reduce

    def __init__(self, actor: str, message: object) -> None:
        super().__init__(f"actor {actor!r} has a full mailbox; {message!r} was not delivered")
        self.actor = actor
        self.message = message


class AskTimeout(TimeoutError):
    """``ask`` got no reply within its timeout.

    The message itself was delivered and may still take effect later.

    Attributes:
        actor: the path of the actor.
        message: the message asked.
        timeout: the timeout in seconds.
    """

    __reduce__ = _reduce

    def __init__(self, actor: str, message: object, timeout: float) -> None:
        super().__init__(f"actor {actor!r} did not answer {message!r} within {timeout} seconds")
        self.actor = actor
        self.message = message
        self.timeout = timeout


class UnhandledMessage(TypeError):
    """The actor has no handler for this type of message.

    Attributes:
        actor: the path of the actor.
        message: the message.
        reason: why this kind of actor refuses a library message (a
            supervisor asked to ``Pause``), or None for a user message with
            no ``handle_message``.
    """

    __reduce__ = _reduce

    def __init__(self, actor: str, message: object, reason: str | None = None) -> None:
        kind = type(message).__name__
        if reason is None:
            text = (
                f"actor {actor!r} does not handle {kind} messages "
                f"(got {message!r}); override handle_message() to accept it"
            )
        else:  # a library message this kind of actor refuses: say why, for an operator
            text = f"actor {actor!r} does not take {kind}: {reason}"
        super().__init__(text)
        self.actor = actor
        self.message = message
        self.reason = reason


class RestartIntensityExceeded(RuntimeError):
    """A supervisor restarted children more often than its intensity allows.

    The supervisor stopped all its children and failed; this is its error, and
    ``__cause__`` is the child failure that tipped it over.

    Attributes:
        supervisor: the path of the supervisor.
        restarts: the ``max_restarts`` limit.
        seconds: the ``max_seconds`` window.
    """

    __reduce__ = _reduce

    def __init__(self, supervisor: str, restarts: int, seconds: float) -> None:
        super().__init__(
            f"supervisor {supervisor!r} exceeded its restart intensity "
            f"(more than {restarts} restarts in {seconds} seconds)"
        )
        self.supervisor = supervisor
        self.restarts = restarts
        self.seconds = seconds


class ChildStartFailed(RuntimeError):
    """A child ended with an error before it was ready, while it was being started.

    Raised by ``Supervisor.start()`` (the supervisor then fails, as in OTP: a
    tree that cannot start is not half-started), by ``start_child`` and by
    ``restart_child``. ``__cause__`` is the child's error.

    Attributes:
        supervisor: the path of the supervisor.
        child: the name of the child.
    """

    __reduce__ = _reduce

    def __init__(self, supervisor: str, child: str) -> None:
        super().__init__(f"child {child!r} of supervisor {supervisor!r} failed to start")
        self.supervisor = supervisor
        self.child = child


class ChildNotFound(LookupError):
    """No child has this name (or no actor this path) under the supervisor.

    Attributes:
        supervisor: the path of the supervisor searched.
        name: the name or relative path looked up.
    """

    __reduce__ = _reduce

    def __init__(self, supervisor: str, name: str) -> None:
        super().__init__(f"supervisor {supervisor!r} has no child {name!r}")
        self.supervisor = supervisor
        self.name = name
