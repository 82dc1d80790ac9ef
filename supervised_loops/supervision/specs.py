"""Child specifications and the vocabulary of supervision.

The words are OTP's, spelled the Python way:

* `RestartType` — when a child is restarted: ``PERMANENT`` (always),
  ``TRANSIENT`` (after a failure only), ``TEMPORARY`` (never). It is not
  called ``Restart`` because `supervised_loops.messages.Restart` is
  already the message that restarts a loop.
* `Strategy` — which children a restart takes along:
  ``ONE_FOR_ONE``, ``ONE_FOR_ALL``, ``REST_FOR_ONE``.
* `AutoShutdown` — whether significant children ending make their
  supervisor end (OTP 24's ``auto_shutdown``).
* `Directive` — what a supervisor does about one failure (the answer
  of the ``decide`` hook).
* `ChildSpec` — how one child is supervised, built with `child`.

Plain strings are accepted wherever an enum is (``restart="transient"``).
Every value is validated when the spec is created, so a bad tree fails where
it is written, naming the field, before anything starts.

May import: ``core.actor`` and the pure top-level modules.
"""

from __future__ import annotations

import enum
import math
import numbers
import types
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeAlias

import attrs

from .. import _validate
from ..backoff import ExponentialBackoff
from ..core.actor import Actor
from ..leases.gate import apply_lease
from ..messages import State

__all__ = [
    "DEFAULT_CANCEL_TIMEOUT",
    "DEFAULT_SHUTDOWN",
    "INFINITY",
    "AutoShutdown",
    "ChildCounts",
    "ChildInfo",
    "ChildSpec",
    "Directive",
    "Quarantine",
    "RestartType",
    "Strategy",
    "child",
]

#: OTP's ``infinity``: as a ``shutdown`` or ``cancel_timeout``, wait as long as
#: it takes. The default for supervisor children, whose own shutdown is
#: bounded by their children's limits.
INFINITY: Literal["infinity"] = "infinity"

#: Seconds a Loop or worker child gets to finish after ``Stop`` (OTP: 5000 ms).
DEFAULT_SHUTDOWN = 5.0

#: Seconds a Loop or worker child gets to end after ``Cancel`` before it is
#: reported unkillable and left behind.
DEFAULT_CANCEL_TIMEOUT = 5.0

Shutdown: TypeAlias = 'float | Literal["infinity"] | None'
Timeout: TypeAlias = 'float | Literal["infinity"]'


class _Choice(enum.StrEnum):
    """A str enum whose bad values are refused with the accepted ones listed."""

    @classmethod
    def parse(cls, field: str, value: Any) -> Any:
        if isinstance(value, cls):
            return value
        return cls(_validate.choice(field, value, [member.value for member in cls]))


class RestartType(_Choice):
    """When a child that ended is started again (OTP restart types)."""

    PERMANENT = "permanent"  #: always: after a failure, a cancellation or a normal exit
    TRANSIENT = "transient"  #: only after a failure (a normal or cancelled end is final)
    TEMPORARY = "temporary"  #: never; the child is removed once it has ended


class Strategy(_Choice):
    """Which children a supervisor restarts when one of them must be restarted."""

    ONE_FOR_ONE = "one_for_one"  #: the child alone
    ONE_FOR_ALL = "one_for_all"  #: every child: all are stopped, then all started in order
    REST_FOR_ONE = "rest_for_one"  #: the child and those started after it


class AutoShutdown(_Choice):
    """Whether a supervisor ends by itself when significant children end (OTP 24)."""

    NEVER = "never"  #: never; significant children are refused
    ANY_SIGNIFICANT = "any_significant"  #: when any significant child ends for good
    ALL_SIGNIFICANT = "all_significant"  #: when every significant child has ended for good


class Directive(_Choice):
    """What a supervisor does about a child's failure (returned by ``decide``)."""

    RESTART = "restart"  #: restart it now, with the strategy, counting intensity
    RETRY = "retry"  #: restart it after its backoff delay (counting intensity then)
    STOP = "stop"  #: leave it stopped; siblings untouched
    ESCALATE = "escalate"  #: fail the supervisor with this error, up to its parent
    QUARANTINE = "quarantine"  #: park it and probe it on a slow schedule


def _restart(value: Any) -> RestartType:
    return RestartType.parse("restart", value)  # type: ignore[no-any-return]


def _seconds_or_infinity(field: str, value: Any, *, allow_none: bool) -> Any:
    if value is None and allow_none:
        return None
    if value == INFINITY and isinstance(value, str):
        return INFINITY
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        rule = "a number, 'infinity'" + (" or None" if allow_none else "")
        _validate.type_error(field, rule, value)
    if value != value or abs(value) == math.inf:  # NaN or infinite: say what to use
        _validate.value_error(field, "finite, or 'infinity' to wait forever", value)
    return _validate.seconds(field, value)


def _positive_seconds(field: str, value: Any) -> float:
    return _validate.seconds(field, value, allow_zero=False)


def _non_negative_int(field: str, value: Any) -> int:
    return _validate.non_negative_int(field, value)


def _max_restarts(value: Any) -> int:
    return _non_negative_int("max_restarts", value)


def _max_seconds(value: Any) -> float:
    return _positive_seconds("max_seconds", value)


def _probe_every(value: Any) -> float:
    return _positive_seconds("probe_every", value)


def _shutdown(value: Any) -> Shutdown:
    return _seconds_or_infinity("shutdown", value, allow_none=True)  # type: ignore[no-any-return]


def _cancel_timeout(value: Any) -> Timeout:
    return _seconds_or_infinity("cancel_timeout", value, allow_none=False)  # type: ignore[no-any-return]


@attrs.frozen
class Quarantine:
    """A child's own restart budget, and what happens once it is spent.

    A child with a quarantine policy is isolated from its siblings' fate: its
    restarts count against this budget instead of the supervisor's intensity.
    When it would be restarted more than ``max_restarts`` times within
    ``max_seconds``, it is *parked* instead: not running, siblings and parent
    untouched, state ``quarantined``, a ``Quarantined`` event published. Every
    ``probe_every`` seconds it is started again as a probe; a probe that fails
    within ``max_seconds`` of its start parks it again at once, a probe that
    lasts longer returns it to normal supervision with a fresh budget.

    A *significant* child is not parked: spending its budget escalates.

    Attributes:
        max_restarts: restarts allowed within ``max_seconds`` (>= 0).
        max_seconds: the budget's window, and a probe's probation, in seconds (> 0).
        probe_every: seconds from parking to the next probe (> 0).

    Raises:
        TypeError, ValueError: a field has a bad type or value (named in the message).
    """

    max_restarts: int = attrs.field(default=3, converter=_max_restarts)
    max_seconds: float = attrs.field(default=60.0, converter=_max_seconds)
    probe_every: float = attrs.field(default=300.0, converter=_probe_every)


def _default_name(spec: ChildSpec) -> str:
    # A non-actor is refused by the 'actor' validator, which runs after defaults.
    name: str = getattr(spec.actor, "name", "?")
    return name


def _default_shutdown(spec: ChildSpec) -> Shutdown:
    return INFINITY if _is_supervisor(spec.actor) else DEFAULT_SHUTDOWN


def _default_cancel_timeout(spec: ChildSpec) -> Timeout:
    return INFINITY if _is_supervisor(spec.actor) else DEFAULT_CANCEL_TIMEOUT


def _is_supervisor(actor: Any) -> bool:
    return bool(getattr(actor, "_is_supervisor", False))


def _check_actor(instance: ChildSpec, attribute: attrs.Attribute[Any], value: Any) -> None:
    _validate.instance("actor", value, Actor, "an Actor (a Loop, a Supervisor, a worker, ...)")


def _check_name(instance: ChildSpec, attribute: attrs.Attribute[Any], value: Any) -> None:
    _validate.actor_name("name", value)


def _check_bool(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    _validate.boolean(attribute.name, value)


def _check_backoff(instance: ChildSpec, attribute: attrs.Attribute[Any], value: Any) -> None:
    _validate.optional_instance("backoff", value, ExponentialBackoff, "an ExponentialBackoff")


def _check_quarantine(instance: ChildSpec, attribute: attrs.Attribute[Any], value: Any) -> None:
    _validate.optional_instance("quarantine", value, Quarantine, "a Quarantine")


def _args(value: Any) -> tuple[Any, ...]:
    return _validate.arguments("args", value)


def _kwargs(value: Any) -> Mapping[str, Any]:
    if type(value) is dict and not value:
        return _NO_KWARGS  # most children take none: one read-only mapping for all
    return _validate.keyword_arguments("kwargs", value)


_NO_KWARGS: Mapping[str, Any] = types.MappingProxyType({})


@attrs.frozen
class ChildSpec:
    """How one child is supervised (OTP's child specification).

    Build it with `child`; a bare actor given to a Supervisor gets
    every default. Validated on construction.

    Attributes:
        actor: the child: a Loop, a Supervisor, a worker or any other Actor.
        name: its name among its siblings (default: the actor's name).
        restart: when it is restarted (default: ``permanent``).
        shutdown: seconds it may take to finish after ``Stop`` before it is
            cancelled; ``None``: cancelled at once; ``"infinity"``: no limit.
            Default: 5 seconds, ``"infinity"`` for a Supervisor.
        cancel_timeout: seconds it may take to end after ``Cancel`` before
            it is reported unkillable and shutdown goes on without it;
            ``"infinity"`` only for a Supervisor (whose own children are
            bounded). Default: 5 seconds, ``"infinity"`` for a Supervisor.
        significant: its ending for good ends the supervisor, per the
            supervisor's ``auto_shutdown``; only for transient or temporary
            children (default: False).
        backoff: the retry backoff for its whitelisted errors when the actor
            has none of its own (default: the supervisor's).
        quarantine: its own restart budget and probe schedule (default: the
            supervisor's; ``None`` there too: restarts count against the
            supervisor's intensity and nothing is parked).
        args, kwargs: what it is started with (a Loop's ``start(*args,
            **kwargs)``); default: nothing.

    Raises:
        TypeError, ValueError: a field has a bad type or value; the message
            names the field.
    """

    actor: Actor = attrs.field(validator=_check_actor)
    name: str = attrs.field(
        default=attrs.Factory(_default_name, takes_self=True), validator=_check_name
    )
    restart: RestartType = attrs.field(default=RestartType.PERMANENT, converter=_restart)
    shutdown: Shutdown = attrs.field(
        default=attrs.Factory(_default_shutdown, takes_self=True), converter=_shutdown
    )
    cancel_timeout: Timeout = attrs.field(
        default=attrs.Factory(_default_cancel_timeout, takes_self=True), converter=_cancel_timeout
    )
    significant: bool = attrs.field(default=False, validator=_check_bool)
    backoff: ExponentialBackoff | None = attrs.field(default=None, validator=_check_backoff)
    quarantine: Quarantine | None = attrs.field(default=None, validator=_check_quarantine)
    args: tuple[Any, ...] = attrs.field(default=(), converter=_args)
    kwargs: Mapping[str, Any] = attrs.field(factory=dict, converter=_kwargs)

    def __attrs_post_init__(self) -> None:
        if self.significant and self.restart is RestartType.PERMANENT:
            raise ValueError(
                "'significant' children must be transient or temporary: a permanent "
                "child is always restarted, so it never ends for good (got restart='permanent')"
            )
        if self.cancel_timeout == INFINITY and not _is_supervisor(self.actor):
            raise ValueError(
                "'cancel_timeout' may be 'infinity' only for a Supervisor: a child that "
                "swallows cancellation would hang the shutdown (got 'infinity')"
            )


def child(
    actor: Actor,
    *,
    name: str | None = None,
    restart: RestartType | str = RestartType.PERMANENT,
    shutdown: Shutdown | Literal["default"] = "default",
    cancel_timeout: Timeout | Literal["default"] = "default",
    significant: bool = False,
    backoff: ExponentialBackoff | None = None,
    quarantine: Quarantine | None = None,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    lease: Any = None,
) -> ChildSpec:
    """Build a `ChildSpec` (see there for every field and default).

    ``shutdown`` and ``cancel_timeout`` left at ``"default"`` take the
    defaults for the kind of actor (5 seconds, or ``"infinity"`` for a
    Supervisor).

    ``lease`` (a ``supervised_loops.leases.Lease``, a lease name, or True)
    gives the child a lease, as ``loop(lease=...)`` and ``worker(...,
    lease=...)`` do: it runs only on the replica that holds it. On a
    Supervisor child, every loop and worker below it shares that one lease.

    Raises:
        TypeError, ValueError: a bad field, named in the message.
    """
    fields: dict[str, Any] = {
        "restart": restart,
        "significant": significant,
        "backoff": backoff,
        "quarantine": quarantine,
        "args": args,
        "kwargs": {} if kwargs is None else kwargs,
    }
    if name is not None:
        fields["name"] = name
    apply_lease(actor, lease)  # leases/gate.py
    if not (isinstance(shutdown, str) and shutdown == "default"):
        fields["shutdown"] = shutdown
    if not (isinstance(cancel_timeout, str) and cancel_timeout == "default"):
        fields["cancel_timeout"] = cancel_timeout
    return ChildSpec(actor, **fields)


@attrs.frozen
class ChildInfo:
    """One line of ``which_children()``: a child as its supervisor sees it.

    Attributes:
        name: the child's name.
        path: its path in the tree.
        kind: ``"loop"``, ``"supervisor"``, ``"worker"`` or another actor's kind.
        state: what it is doing (``quarantined`` while parked).
        restart: its restart type.
        significant: whether it is significant.
        restarts: how many times this supervisor restarted it.
        failures: how many of its runs ended with an escalated error.
    """

    name: str
    path: str
    kind: str
    state: State
    restart: RestartType
    significant: bool
    restarts: int
    failures: int


@attrs.frozen
class ChildCounts:
    """The answer of ``count_children()`` (OTP's counts).

    Attributes:
        specs: children known to the supervisor, running or not.
        active: children running now.
        supervisors: children that are supervisors.
        workers: the other children (loops, workers, other actors).
    """

    specs: int
    active: int
    supervisors: int
    workers: int
