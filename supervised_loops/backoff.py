"""Exponential backoff and retry rules: how long a loop waits before retrying.

This module is pure: it never sleeps, never reads a clock and never touches
asyncio. The caller passes the current monotonic time (``now``, in seconds) and
a `random.Random`, so a backoff sequence is deterministic under test and
runs in virtual time.

The defaults reproduce ``discord.ext.tasks`` (which uses
``discord.backoff.ExponentialBackoff``): the k-th consecutive failure waits
``uniform(0, 1 * 2**min(k, 10))`` seconds, and the exponent starts over when
more than 2048 seconds pass between two failures. Unlike the original, the
exponent also starts over after a number of successful iterations (one by
default), so a loop that recovered does not pay for an old outage at its next
failure.

`RetryRule` says which exceptions are transient (a class or classes,
plus an optional predicate), with its own backoff; `retry_delay` turns a
rule, a tracker and an exception into the number of seconds to wait, honouring
a ``retry_after`` the exception carries and the loop's next regular tick.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from ._retry_after import retry_after_of
from ._validate import (
    boolean,
    exception_class,
    instance,
    number,
    optional_callable,
    optional_instance,
    positive_int,
    seconds,
    value_error,
)

__all__ = [
    "DEFAULT_RETRY_EXCEPTIONS",
    "BackoffTracker",
    "ExponentialBackoff",
    "RetryRule",
    "retry_after_of",
    "retry_delay",
]

#: The exceptions a loop retries unless told otherwise, as in discord.ext.tasks.
#: ``OSError`` covers ``ConnectionError``; ``TimeoutError`` (which is also what
#: ``asyncio.TimeoutError`` is since Python 3.11) is listed for clarity.
DEFAULT_RETRY_EXCEPTIONS: tuple[type[BaseException], ...] = (OSError, TimeoutError)

# The exponent stops growing here (the window stops doubling), as in discord.py.
_MAX_EXPONENT = 10

# ``attempt`` keeps counting past _MAX_EXPONENT (callers use it for "give up
# after N failures"), but saturates here so a loop failing forever keeps a
# small, fixed-size counter.
_MAX_ATTEMPT = 2**31 - 1

# Exceptions that mean "stop the process" or "stop this task": retrying them
# would turn Ctrl-C, sys.exit() or a cancellation into a retry loop.
_NEVER_RETRIED: tuple[type[BaseException], ...] = (
    KeyboardInterrupt,
    SystemExit,
    GeneratorExit,
    asyncio.CancelledError,
)


# --------------------------------------------------------------------------
# Validation (converters return the normalised value or raise).


def _base(value: float) -> float:
    return seconds("base", value, allow_zero=False)


def _cap(value: float) -> float:
    return seconds("cap", value, allow_zero=False)


def _reset_after(value: float | None) -> float | None:
    return None if value is None else seconds("reset_after", value, allow_zero=False)


def _reset_after_successes(value: int | None) -> int | None:
    return None if value is None else positive_int("reset_after_successes", value)


def _is_bool(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    # attrs.validators.instance_of(bool) words its message differently from
    # the rest of the package; keep the one shape users learn.
    boolean(attribute.name, value)


# --------------------------------------------------------------------------
# The policy and its per-loop state.


@attrs.frozen
class ExponentialBackoff:
    """An exponential backoff policy: how long to wait after the k-th failure.

    The k-th consecutive failure (k >= 1) has the *window*
    ``min(cap, base * 2**min(k, 10))`` seconds. With ``jitter`` the delay is
    drawn uniformly from ``[0, window]`` ("full jitter"): many loops failing
    at once (a network outage) then spread their retries out instead of
    hammering the server in lock-step. Without it the delay is the window.

    The policy is an immutable value, shared freely between loops; the
    counting lives in a `BackoffTracker` (see `tracker`), one per
    loop or supervised child.

    The defaults equal ``discord.ext.tasks``: windows 2, 4, 8, ..., 1024
    seconds, then 1024 for every further failure; the exponent resets when
    more than 2048 seconds pass between two failures. In addition, one
    successful iteration resets it (``reset_after_successes=1``), which the
    original never does.

    Attributes:
        base: Seconds, > 0. The unit of the window: the first failure's
            window is ``2 * base``.
        cap: Seconds, > 0. The largest window. A ``cap`` below ``2 * base``
            makes every window equal to ``cap`` (a constant backoff).
        jitter: ``True``: the delay is ``uniform(0, window)`` (as discord.py
            does). ``False``: the delay is exactly the window.
        reset_after: Seconds, > 0, or ``None``. When more than this many
            seconds pass between two failures (a quiet period), the next
            failure counts as the first again. ``None``: never by time.
        reset_after_successes: An int > 0, or ``None``. After this many
            consecutive successful iterations the exponent resets. ``None``:
            never by count (only ``reset_after`` applies, as in discord.py).

    Raises:
        TypeError: A field has the wrong type (``bool`` is not a number).
        ValueError: A duration is NaN, infinite, zero or negative, or
            ``reset_after_successes`` is zero or negative.
    """

    base: float = attrs.field(default=1.0, converter=_base)
    cap: float = attrs.field(default=1024.0, converter=_cap)
    jitter: bool = attrs.field(default=True, validator=_is_bool)
    reset_after: float | None = attrs.field(default=2048.0, converter=_reset_after)
    reset_after_successes: int | None = attrs.field(default=1, converter=_reset_after_successes)

    def window(self, attempt: int) -> float:
        """Return the largest delay, in seconds, for the ``attempt``-th failure.

        Args:
            attempt: Which consecutive failure this is, counting from 1.

        Returns:
            ``min(cap, base * 2**min(attempt, 10))`` seconds.

        Raises:
            TypeError: ``attempt`` is not an int.
            ValueError: ``attempt`` is below 1 (there is no window before
                the first failure).
        """
        attempt = positive_int("attempt", attempt)
        # A huge finite base times 1024 overflows to inf, never raises; the
        # cap (finite) then wins.
        return min(self.cap, self.base * (1 << min(attempt, _MAX_EXPONENT)))

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Return the delay, in seconds, before retrying the ``attempt``-th failure.

        Args:
            attempt: Which consecutive failure this is, counting from 1.
            rng: The random source for the jitter; unused without jitter.
                Passing it in keeps the policy pure and a seeded run
                reproducible.

        Returns:
            ``rng.uniform(0, window(attempt))`` with jitter, else
            ``window(attempt)``; always within ``[0, window(attempt)]``.

        Raises:
            TypeError, ValueError: As for `window`.
        """
        window = self.window(attempt)
        if not self.jitter:
            return window
        # uniform(a, b) is a + (b - a) * random(): never outside [0, window].
        return rng.uniform(0.0, window)

    def tracker(self, rng: random.Random | None = None) -> BackoffTracker:
        """Return a fresh tracker (no failures counted yet) using this policy.

        Args:
            rng: The random source for the jitter. ``None``: the library's
                own OS-seeded ``random.Random``, shared by every tracker, so
                trackers never disturb the global random state and cost no
                2.5 KiB generator (and no OS entropy read) each.
        """
        return BackoffTracker(self, rng)


#: The jitter source of trackers given none. Creating a ``random.Random`` per
#: tracker read the OS's entropy and cost ~20 µs per first failure.
_SHARED_RNG = random.Random()


class BackoffTracker:
    """The mutable backoff state of one loop (or one supervised child).

    It counts consecutive failures and applies the policy's resets: a failure
    after a quiet period longer than ``reset_after`` seconds starts over at
    attempt 1, and ``reset_after_successes`` consecutive successes bring the
    count back to 0. It reads no clock: `failure` is given the current
    monotonic time in seconds.

    Create one with `ExponentialBackoff.tracker`.
    """

    __slots__ = ("_attempt", "_last_failure", "_policy", "_rng", "_successes")

    def __init__(self, policy: ExponentialBackoff, rng: random.Random | None = None) -> None:
        """Start with no failure counted.

        Args:
            policy: The backoff policy to apply.
            rng: The random source for the jitter; ``None``: the shared,
                OS-seeded generator of the library.

        Raises:
            TypeError: ``policy`` is not an `ExponentialBackoff`, or
                ``rng`` is not a ``random.Random``.
        """
        instance("policy", policy, ExponentialBackoff, "an ExponentialBackoff")
        optional_instance("rng", rng, random.Random, "a random.Random")
        self._policy = policy
        self._rng = _SHARED_RNG if rng is None else rng
        self._attempt = 0
        self._successes = 0
        self._last_failure: float | None = None

    def __repr__(self) -> str:
        return (
            f"<BackoffTracker attempt={self._attempt} successes={self._successes}"
            f" policy={self._policy!r}>"
        )

    @property
    def policy(self) -> ExponentialBackoff:
        """The policy this tracker applies (read-only)."""
        return self._policy

    @property
    def attempt(self) -> int:
        """Consecutive failures counted so far; 0 means none (read-only).

        It keeps counting after the window stops growing (so a caller can
        give up after N failures) but saturates at 2**31 - 1.
        """
        return self._attempt

    def failure(self, now: float) -> float:
        """Count a failure at ``now`` and return the delay before retrying.

        First the quiet-period reset: if more than ``reset_after`` seconds
        passed since the previous failure (strictly more, as in discord.py),
        the count starts over. Then the count goes up by one and any run of
        successes is forgotten (the successes that reset the exponent must be
        consecutive).

        Args:
            now: The current monotonic time, in seconds (``time.monotonic()``
                or a virtual clock). Only differences between calls matter.

        Returns:
            The delay in seconds, within ``[0, policy.window(attempt)]``.

        Raises:
            TypeError: ``now`` is not a number.
            ValueError: ``now`` is NaN or infinite.
        """
        now = number("now", now)  # an instant: may be negative, must be finite
        reset_after = self._policy.reset_after
        if (
            reset_after is not None
            and self._last_failure is not None
            and now - self._last_failure > reset_after
        ):
            self._attempt = 0
        self._last_failure = now
        self._attempt = min(self._attempt + 1, _MAX_ATTEMPT)
        self._successes = 0
        return self._policy.delay(self._attempt, self._rng)

    def success(self) -> None:
        """Count a successful iteration.

        After ``reset_after_successes`` consecutive successes the failure
        count returns to 0, so the next failure waits as the first one did.
        With ``reset_after_successes=None`` this does nothing.
        """
        threshold = self._policy.reset_after_successes
        if threshold is None or self._attempt == 0:
            # Nothing to reset; not counting keeps the counter bounded.
            return
        self._successes += 1
        if self._successes >= threshold:
            self._attempt = 0
            self._successes = 0

    def reset(self) -> None:
        """Forget every failure and success, as if newly created."""
        self._attempt = 0
        self._successes = 0
        self._last_failure = None


# --------------------------------------------------------------------------
# Retry rules: what is transient, and how long to wait.


def _exception_classes(
    value: type[BaseException] | Iterable[type[BaseException]],
) -> tuple[type[BaseException], ...]:
    if isinstance(value, type | str | bytes) or not isinstance(value, Iterable):
        # A single item: the validator accepts it only if it is a class.
        return (value,)
    return tuple(value)


def retryable(name: str, value: Any) -> type[BaseException]:
    """Return ``value`` if it is an exception class that may be retried.

    Shared by every place that takes exception classes to retry
    (``RetryRule``, ``Loop.add_exception_type``, ``worker(exception_types=)``)
    so they refuse the same values with the same message.

    Raises:
        TypeError: ``value`` is not an exception class.
        ValueError: ``value`` is (a subclass of) KeyboardInterrupt,
            SystemExit, GeneratorExit or asyncio.CancelledError.
    """
    cls = exception_class(name, value)
    if issubclass(cls, _NEVER_RETRIED):
        value_error(
            name,
            "retryable: not KeyboardInterrupt, SystemExit, GeneratorExit or CancelledError",
            value,
        )
    return cls


def _check_exception_classes(
    rule: Any, attribute: attrs.Attribute[Any], value: tuple[Any, ...]
) -> None:
    if not value:
        value_error("exceptions", "at least one exception class", value)
    if len(value) == 1:
        retryable("exceptions", value[0])  # a single class was passed
        return
    for index, item in enumerate(value):
        retryable(f"exceptions[{index}]", item)


def _check_when(rule: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    optional_callable("when", value)


def _check_backoff(rule: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    optional_instance("backoff", value, ExponentialBackoff, "an ExponentialBackoff")


@attrs.frozen
class RetryRule:
    """One rule of "what is transient": exception classes, a predicate, a backoff.

    An exception matches when it is an instance of one of ``exceptions`` and
    ``when`` (if given) returns true for it; a loop retries a matching
    exception instead of escalating it. Several rules let different failures
    back off differently, e.g. a short backoff for HTTP 502/503 and a long one
    for connection errors.

    ``KeyboardInterrupt``, ``SystemExit``, ``GeneratorExit`` and
    ``asyncio.CancelledError`` are never retried: naming them (or a subclass)
    is refused, and `matches` is false for them even under a broad
    class such as ``BaseException``.

    Attributes:
        exceptions: The exception classes this rule covers. Accepts one class
            or an iterable of classes; stored as a tuple.
        when: An extra predicate on the exception, e.g.
            ``lambda e: e.status in (502, 503)``; ``None``: the class alone
            decides.
        backoff: This rule's backoff policy; ``None``: the loop's (or
            supervisor's) default backoff.
        honour_retry_after: Wait at least the ``retry_after`` seconds the
            exception carries (see `retry_after_of`).
        cap_at_next_tick: A retry never waits past the next regular tick:
            the backoff delay is cut to the time left until then, since the
            schedule would run the body at that tick anyway.

    Raises:
        TypeError: An item of ``exceptions`` is not an exception class;
            ``when`` is not callable; ``backoff`` is not an
            `ExponentialBackoff`; a flag is not a ``bool``.
        ValueError: ``exceptions`` is empty or includes an exception that is
            never retried.
    """

    exceptions: tuple[type[BaseException], ...] = attrs.field(
        converter=_exception_classes, validator=_check_exception_classes
    )
    when: Callable[[BaseException], bool] | None = attrs.field(default=None, validator=_check_when)
    backoff: ExponentialBackoff | None = attrs.field(default=None, validator=_check_backoff)
    honour_retry_after: bool = attrs.field(default=True, validator=_is_bool)
    cap_at_next_tick: bool = attrs.field(default=True, validator=_is_bool)

    def matches(self, exc: BaseException) -> bool:
        """Return whether this rule treats ``exc`` as transient.

        The class check comes first, so ``when`` only ever sees exceptions of
        the rule's classes and may read their attributes safely.

        Args:
            exc: The exception the loop's body raised.

        Returns:
            True if ``exc`` is an instance of one of ``exceptions``, is not a
            never-retried exception, and ``when`` (if any) returns true.

        Raises:
            Exception: Whatever ``when`` raises propagates unchanged; it is
                not taken as "no match", since that would hide a bug in the
                predicate. The caller treats it as a failure of the rule.
        """
        if not isinstance(exc, self.exceptions) or isinstance(exc, _NEVER_RETRIED):
            return False
        return self.when is None or bool(self.when(exc))


def retry_delay(
    rule: RetryRule,
    tracker: BackoffTracker,
    exc: BaseException,
    *,
    now: float,
    next_tick: float | None,
) -> float:
    """Count a failure and return the seconds to wait before retrying.

    The delay is the tracker's backoff delay (``tracker.failure(now)`` is
    called exactly once, so the failure is counted whatever the bounds
    below do). Then:

    * with ``rule.cap_at_next_tick`` and a ``next_tick``, the backoff delay is
      cut to ``max(0, next_tick - now)``: retrying later than the next
      regular run would only delay that run;
    * with ``rule.honour_retry_after`` and a `retry_after_of` value,
      the result is at least that value. The server's instruction is a
      floor that the next-tick cap never shortens, so such a retry may run
      after the next tick.

    Args:
        rule: The rule that matched ``exc``.
        tracker: The backoff state of the failing loop or child.
        exc: The exception being retried.
        now: The current monotonic time, in seconds.
        next_tick: The monotonic time, in seconds, of the next regular
            tick; ``None`` when there is none (e.g. the loop's last
            iteration).

    Returns:
        The delay in seconds, >= 0.

    Raises:
        TypeError: ``now`` or ``next_tick`` is not a number.
        ValueError: ``now`` or ``next_tick`` is NaN or infinite.
    """
    now = number("now", now)  # an instant: may be negative, must be finite
    if next_tick is not None:
        next_tick = number("next_tick", next_tick)
    delay = tracker.failure(now)
    if rule.cap_at_next_tick and next_tick is not None:
        delay = min(delay, max(0.0, next_tick - now))
    if rule.honour_retry_after:
        floor = retry_after_of(exc)
        if floor is not None:
            delay = max(delay, floor)
    return delay


def retry_rule(name: str, value: Any) -> RetryRule:
    """Return ``value`` if it is a `RetryRule`, else raise ``TypeError`` (a shared check)."""
    result: RetryRule = instance(name, value, RetryRule, "a RetryRule")
    return result
