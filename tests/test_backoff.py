"""Tests for supervised_loops.backoff: pure functions of (attempt, now, rng)."""

from __future__ import annotations

import asyncio
import datetime
import math
import random
from fractions import Fraction
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supervised_loops import backoff as backoff_module
from supervised_loops.backoff import (
    DEFAULT_RETRY_EXCEPTIONS,
    BackoffTracker,
    ExponentialBackoff,
    RetryRule,
    retry_after_of,
    retry_delay,
)

EXACT = ExponentialBackoff(jitter=False)
NAN = float("nan")
INF = float("inf")


class RetryAfterError(Exception):
    """An exception carrying a server's Retry-After, as HTTP clients raise on 429."""

    def __init__(self, retry_after: Any) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


class HTTPError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


# --------------------------------------------------------------------------
# ExponentialBackoff: the windows and delays.


def test_defaults_are_discord_compatible() -> None:
    policy = ExponentialBackoff()
    assert policy.base == 1.0
    assert policy.cap == 1024.0
    assert policy.jitter is True
    assert policy.reset_after == 2048.0
    assert policy.reset_after_successes == 1


def test_default_windows_double_from_2_to_1024_then_stay() -> None:
    policy = ExponentialBackoff()
    assert [policy.window(k) for k in range(1, 11)] == [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
    assert [policy.window(k) for k in (11, 12, 100, 10**6)] == [1024.0] * 4


def test_seeded_rng_gives_reproducible_delays_within_the_window() -> None:
    policy = ExponentialBackoff()
    first = policy.tracker(random.Random(42))
    second = policy.tracker(random.Random(42))
    delays = [first.failure(now=float(t)) for t in range(12)]
    assert delays == [second.failure(now=float(t)) for t in range(12)]
    for attempt, delay in enumerate(delays, start=1):
        assert 0.0 <= delay <= policy.window(attempt)
    # Full jitter: uniform(0, window) from the given stream, nothing else drawn.
    expected_rng = random.Random(42)
    assert delays == [expected_rng.uniform(0, policy.window(k)) for k in range(1, 13)]


def test_delay_uses_the_rng_passed_in() -> None:
    policy = ExponentialBackoff()
    assert policy.delay(3, random.Random(1)) == random.Random(1).uniform(0, 8)


def test_jitter_false_gives_exact_windows() -> None:
    tracker = EXACT.tracker()
    assert [tracker.failure(now=0.0) for _ in range(12)] == [
        2.0,
        4.0,
        8.0,
        16.0,
        32.0,
        64.0,
        128.0,
        256.0,
        512.0,
        1024.0,
        1024.0,
        1024.0,
    ]
    assert EXACT.delay(1, random.Random(0)) == 2.0


def test_cap_limits_the_window() -> None:
    policy = ExponentialBackoff(base=1, cap=10, jitter=False)
    assert [policy.window(k) for k in range(1, 7)] == [2, 4, 8, 10, 10, 10]


def test_cap_below_twice_base_gives_a_constant_window() -> None:
    policy = ExponentialBackoff(base=5, cap=3, jitter=False)
    assert [policy.window(k) for k in (1, 2, 11)] == [3.0, 3.0, 3.0]


def test_base_scales_the_window() -> None:
    policy = ExponentialBackoff(base=0.5, cap=1e9)
    assert [policy.window(k) for k in (1, 2, 10, 11)] == [1.0, 2.0, 512.0, 512.0]


def test_huge_base_is_limited_by_the_cap_not_overflowing() -> None:
    longest = 1000 * 365 * 86_400.0  # the longest duration an argument may name
    policy = ExponentialBackoff(base=longest, cap=longest)
    assert policy.window(10) == longest
    assert 0.0 <= policy.delay(10, random.Random(0)) <= longest


def test_durations_over_1000_years_are_refused() -> None:
    # A delay that long could not be scheduled within the range of datetime.
    with pytest.raises(
        ValueError, match=r"^'cap' must be <= 31536000000 \(1000 years\) \(got 1e\+308\)$"
    ):
        ExponentialBackoff(cap=1e308)


def test_int_durations_are_stored_as_floats() -> None:
    policy = ExponentialBackoff(base=2, cap=60, reset_after=100)
    assert (policy.base, policy.cap, policy.reset_after) == (2.0, 60.0, 100.0)
    assert all(type(v) is float for v in (policy.base, policy.cap, policy.reset_after))


def test_policy_is_a_frozen_hashable_value() -> None:
    policy = ExponentialBackoff()
    assert policy == ExponentialBackoff()
    assert hash(policy) == hash(ExponentialBackoff())
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        policy.base = 2.0  # type: ignore[misc]
    assert attrs.evolve(policy, base=3).window(1) == 6.0


@pytest.mark.parametrize(
    ("attempt", "error", "message"),
    [
        (0, ValueError, "'attempt' must be > 0 (got 0)"),
        (-1, ValueError, "'attempt' must be > 0 (got -1)"),
        (1.0, TypeError, "'attempt' must be an int (got 1.0)"),
        (True, TypeError, "'attempt' must be an int (got True)"),
    ],
)
def test_window_and_delay_refuse_attempts_below_one(
    attempt: Any, error: type[Exception], message: str
) -> None:
    policy = ExponentialBackoff()
    with pytest.raises(error) as info:
        policy.window(attempt)
    assert str(info.value) == message
    with pytest.raises(error) as info:
        policy.delay(attempt, random.Random(0))
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"base": 0}, ValueError, "'base' must be > 0 (got 0)"),
        ({"base": 0.0}, ValueError, "'base' must be > 0 (got 0.0)"),
        ({"base": -1}, ValueError, "'base' must be > 0 (got -1)"),
        ({"base": NAN}, ValueError, "'base' must be finite (got nan)"),
        ({"base": INF}, ValueError, "'base' must be finite (got inf)"),
        ({"base": True}, TypeError, "'base' must be a number (got True)"),
        ({"base": "1"}, TypeError, "'base' must be a number (got '1')"),
        ({"base": None}, TypeError, "'base' must be a number (got None)"),
        ({"cap": 0}, ValueError, "'cap' must be > 0 (got 0)"),
        ({"cap": -5.0}, ValueError, "'cap' must be > 0 (got -5.0)"),
        ({"cap": NAN}, ValueError, "'cap' must be finite (got nan)"),
        ({"cap": INF}, ValueError, "'cap' must be finite (got inf)"),
        ({"cap": False}, TypeError, "'cap' must be a number (got False)"),
        ({"cap": None}, TypeError, "'cap' must be a number (got None)"),
        ({"jitter": 1}, TypeError, "'jitter' must be a bool (got 1)"),
        ({"jitter": None}, TypeError, "'jitter' must be a bool (got None)"),
        ({"jitter": "yes"}, TypeError, "'jitter' must be a bool (got 'yes')"),
        ({"reset_after": 0}, ValueError, "'reset_after' must be > 0 (got 0)"),
        ({"reset_after": -1.5}, ValueError, "'reset_after' must be > 0 (got -1.5)"),
        ({"reset_after": NAN}, ValueError, "'reset_after' must be finite (got nan)"),
        ({"reset_after": INF}, ValueError, "'reset_after' must be finite (got inf)"),
        (
            {"reset_after": True},
            TypeError,
            "'reset_after' must be a number (got True)",
        ),
        (
            {"reset_after": "2048"},
            TypeError,
            "'reset_after' must be a number (got '2048')",
        ),
        (
            {"reset_after_successes": 0},
            ValueError,
            "'reset_after_successes' must be > 0 (got 0)",
        ),
        (
            {"reset_after_successes": -2},
            ValueError,
            "'reset_after_successes' must be > 0 (got -2)",
        ),
        (
            {"reset_after_successes": 1.0},
            TypeError,
            "'reset_after_successes' must be an int (got 1.0)",
        ),
        (
            {"reset_after_successes": True},
            TypeError,
            "'reset_after_successes' must be an int (got True)",
        ),
        (
            {"reset_after_successes": "3"},
            TypeError,
            "'reset_after_successes' must be an int (got '3')",
        ),
    ],
)
def test_exponential_backoff_validates_every_field(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        ExponentialBackoff(**kwargs)
    assert str(info.value) == message


def test_reset_fields_accept_none() -> None:
    policy = ExponentialBackoff(reset_after=None, reset_after_successes=None)
    assert policy.reset_after is None
    assert policy.reset_after_successes is None


# --------------------------------------------------------------------------
# BackoffTracker: counting failures and the two resets.


def test_tracker_starts_with_no_failures_and_counts_them() -> None:
    tracker = EXACT.tracker()
    assert tracker.policy is EXACT
    assert tracker.attempt == 0
    tracker.failure(now=0.0)
    tracker.failure(now=1.0)
    assert tracker.attempt == 2


def test_tracker_attempt_and_policy_are_read_only() -> None:
    tracker = EXACT.tracker()
    with pytest.raises(AttributeError):
        tracker.attempt = 5  # type: ignore[misc]
    with pytest.raises(AttributeError):
        tracker.policy = ExponentialBackoff()  # type: ignore[misc]
    with pytest.raises(AttributeError):
        tracker.extra = 1  # type: ignore[attr-defined]


def test_tracker_without_rng_uses_its_own_random() -> None:
    state = random.getstate()
    delay = ExponentialBackoff().tracker().failure(now=0.0)
    assert 0.0 <= delay <= 2.0
    assert random.getstate() == state


def test_tracker_validates_its_arguments() -> None:
    with pytest.raises(TypeError) as info:
        BackoffTracker("policy")  # type: ignore[arg-type]
    assert str(info.value) == "'policy' must be an ExponentialBackoff (got 'policy')"
    with pytest.raises(TypeError) as info:
        ExponentialBackoff().tracker(rng=42)  # type: ignore[arg-type]
    assert str(info.value) == "'rng' must be a random.Random or None (got 42)"


@pytest.mark.parametrize(
    ("now", "error", "message"),
    [
        (NAN, ValueError, "'now' must be finite (got nan)"),
        (INF, ValueError, "'now' must be finite (got inf)"),
        ("0", TypeError, "'now' must be a number (got '0')"),
        (None, TypeError, "'now' must be a number (got None)"),
        (True, TypeError, "'now' must be a number (got True)"),
    ],
)
def test_failure_validates_now_and_counts_nothing_on_error(
    now: Any, error: type[Exception], message: str
) -> None:
    tracker = EXACT.tracker()
    with pytest.raises(error) as info:
        tracker.failure(now)
    assert str(info.value) == message
    assert tracker.attempt == 0


def test_failure_accepts_a_negative_virtual_clock() -> None:
    tracker = EXACT.tracker()
    assert tracker.failure(now=-100.0) == 2.0
    assert tracker.failure(now=-99) == 4.0


def test_no_reset_when_the_quiet_period_is_exactly_reset_after() -> None:
    tracker = EXACT.tracker()
    tracker.failure(now=0.0)
    assert tracker.failure(now=2048.0) == 4.0
    assert tracker.attempt == 2


def test_reset_when_the_quiet_period_exceeds_reset_after() -> None:
    tracker = EXACT.tracker()
    tracker.failure(now=0.0)
    tracker.failure(now=1.0)
    assert tracker.failure(now=1.0 + 2048.001) == 2.0
    assert tracker.attempt == 1


def test_quiet_period_is_measured_from_the_last_failure() -> None:
    tracker = EXACT.tracker()
    for now in (0.0, 2000.0, 4000.0, 6000.0):
        tracker.failure(now)
    assert tracker.attempt == 4


def test_reset_after_none_never_resets_by_time() -> None:
    policy = ExponentialBackoff(jitter=False, reset_after=None, reset_after_successes=None)
    tracker = policy.tracker()
    tracker.failure(now=0.0)
    assert tracker.failure(now=1e12) == 4.0
    assert tracker.attempt == 2


def test_one_success_resets_the_exponent_by_default() -> None:
    tracker = EXACT.tracker()
    tracker.failure(now=0.0)
    tracker.failure(now=1.0)
    tracker.success()
    assert tracker.attempt == 0
    assert tracker.failure(now=2.0) == 2.0


def test_success_count_reset_happens_after_n_successes_not_n_minus_one() -> None:
    policy = ExponentialBackoff(jitter=False, reset_after_successes=3)
    tracker = policy.tracker()
    tracker.failure(now=0.0)
    tracker.failure(now=1.0)
    tracker.success()
    tracker.success()
    assert tracker.attempt == 2
    tracker.success()
    assert tracker.attempt == 0


def test_a_failure_between_successes_restarts_the_success_count() -> None:
    policy = ExponentialBackoff(jitter=False, reset_after_successes=3)
    tracker = policy.tracker()
    tracker.failure(now=0.0)
    tracker.success()
    tracker.success()
    tracker.failure(now=1.0)
    tracker.success()
    tracker.success()
    assert tracker.attempt == 2
    tracker.success()
    assert tracker.attempt == 0


def test_successes_before_any_failure_do_not_count_towards_a_reset() -> None:
    policy = ExponentialBackoff(jitter=False, reset_after_successes=2)
    tracker = policy.tracker()
    for _ in range(5):
        tracker.success()
    tracker.failure(now=0.0)
    tracker.success()
    assert tracker.attempt == 1


def test_reset_after_successes_none_never_resets_by_count() -> None:
    policy = ExponentialBackoff(jitter=False, reset_after_successes=None)
    tracker = policy.tracker()
    tracker.failure(now=0.0)
    tracker.failure(now=1.0)
    for _ in range(100):
        tracker.success()
    assert tracker.attempt == 2
    assert tracker.failure(now=2.0) == 8.0


def test_reset_forgets_failures_successes_and_the_last_failure_time() -> None:
    policy = ExponentialBackoff(jitter=False, reset_after_successes=2)
    tracker = policy.tracker()
    tracker.failure(now=0.0)
    tracker.failure(now=1.0)
    tracker.success()
    tracker.reset()
    assert tracker.attempt == 0
    tracker.failure(now=5000.0)
    tracker.success()
    # Had the earlier success survived reset(), this would be a second one.
    assert tracker.attempt == 1


def test_attempt_saturates_instead_of_growing_without_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(backoff_module, "_MAX_ATTEMPT", 3)
    tracker = EXACT.tracker()
    for _ in range(10):
        assert tracker.failure(now=0.0) <= 1024.0
    assert tracker.attempt == 3


def test_tracker_repr_shows_its_state() -> None:
    tracker = EXACT.tracker()
    tracker.failure(now=0.0)
    assert repr(tracker).startswith("<BackoffTracker attempt=1 successes=0 policy=")


# --------------------------------------------------------------------------
# RetryRule: what is transient.


def test_default_retry_exceptions_cover_connection_and_timeout_errors() -> None:
    assert (OSError, TimeoutError) == DEFAULT_RETRY_EXCEPTIONS
    rule = RetryRule(DEFAULT_RETRY_EXCEPTIONS)
    assert rule.matches(ConnectionResetError())
    assert rule.matches(TimeoutError())
    assert not rule.matches(ValueError())


def test_rule_defaults() -> None:
    rule = RetryRule(OSError)
    assert rule.exceptions == (OSError,)
    assert rule.when is None
    assert rule.backoff is None
    assert rule.honour_retry_after is True
    assert rule.cap_at_next_tick is True


@pytest.mark.parametrize(
    "exceptions",
    [(OSError, ValueError), [OSError, ValueError], iter([OSError, ValueError])],
)
def test_rule_accepts_any_iterable_of_classes_and_stores_a_tuple(exceptions: Any) -> None:
    rule = RetryRule(exceptions)
    assert rule.exceptions == (OSError, ValueError)


def test_rule_matches_its_class_and_subclasses_only() -> None:
    rule = RetryRule(OSError)
    assert rule.matches(OSError())
    assert rule.matches(ConnectionRefusedError())
    assert not rule.matches(ValueError())
    assert not rule.matches(Exception())


def test_rule_with_a_tuple_matches_any_of_its_classes() -> None:
    rule = RetryRule((KeyError, OSError))
    assert rule.matches(KeyError())
    assert rule.matches(FileNotFoundError())
    assert not rule.matches(IndexError())


def test_rule_predicate_decides_after_the_class() -> None:
    rule = RetryRule(HTTPError, when=lambda e: e.status in (502, 503))  # type: ignore[attr-defined]
    assert rule.matches(HTTPError(503))
    assert not rule.matches(HTTPError(404))


def test_rule_predicate_is_not_called_for_other_classes() -> None:
    calls: list[BaseException] = []

    def when(exc: BaseException) -> bool:
        calls.append(exc)
        return True

    rule = RetryRule(HTTPError, when=when)
    assert not rule.matches(OSError())
    assert calls == []


def test_rule_predicate_result_is_taken_as_truthiness() -> None:
    rule = RetryRule(HTTPError, when=lambda e: e.status)  # type: ignore[attr-defined]
    assert rule.matches(HTTPError(1)) is True
    assert rule.matches(HTTPError(0)) is False


def test_rule_predicate_that_raises_propagates() -> None:
    def when(exc: BaseException) -> bool:
        raise LookupError("predicate bug")

    rule = RetryRule(OSError, when=when)
    with pytest.raises(LookupError, match="predicate bug"):
        rule.matches(OSError())


NEVER_RETRIED_MESSAGE = (
    "'{}' must be retryable: not KeyboardInterrupt, SystemExit, GeneratorExit"
    " or CancelledError (got {!r})"
)


class MyCancelled(asyncio.CancelledError):
    pass


@pytest.mark.parametrize(
    "cls", [KeyboardInterrupt, SystemExit, GeneratorExit, asyncio.CancelledError, MyCancelled]
)
def test_rule_refuses_exceptions_that_are_never_retried(cls: type[BaseException]) -> None:
    with pytest.raises(ValueError) as info:
        RetryRule(cls)
    assert str(info.value) == NEVER_RETRIED_MESSAGE.format("exceptions", cls)
    with pytest.raises(ValueError) as info:
        RetryRule((OSError, cls))
    assert str(info.value) == NEVER_RETRIED_MESSAGE.format("exceptions[1]", cls)


def test_broad_rule_never_matches_exceptions_that_are_never_retried() -> None:
    rule = RetryRule(BaseException)
    assert rule.matches(ValueError())
    assert not rule.matches(KeyboardInterrupt())
    assert not rule.matches(SystemExit())
    assert not rule.matches(GeneratorExit())
    assert not rule.matches(asyncio.CancelledError())


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"exceptions": "OSError"},
            TypeError,
            "'exceptions' must be an exception class (got 'OSError')",
        ),
        ({"exceptions": 42}, TypeError, "'exceptions' must be an exception class (got 42)"),
        (
            {"exceptions": int},
            TypeError,
            "'exceptions' must be an exception class (got <class 'int'>)",
        ),
        (
            {"exceptions": [OSError, None]},
            TypeError,
            "'exceptions[1]' must be an exception class (got None)",
        ),
        (
            {"exceptions": OSError()},
            TypeError,
            "'exceptions' must be an exception class (got OSError())",
        ),
        (
            {"exceptions": ()},
            ValueError,
            "'exceptions' must be at least one exception class (got ())",
        ),
        (
            {"exceptions": OSError, "when": 3},
            TypeError,
            "'when' must be callable or None (got 3)",
        ),
        (
            {"exceptions": OSError, "backoff": 1.0},
            TypeError,
            "'backoff' must be an ExponentialBackoff or None (got 1.0)",
        ),
        (
            {"exceptions": OSError, "honour_retry_after": 1},
            TypeError,
            "'honour_retry_after' must be a bool (got 1)",
        ),
        (
            {"exceptions": OSError, "cap_at_next_tick": None},
            TypeError,
            "'cap_at_next_tick' must be a bool (got None)",
        ),
    ],
)
def test_retry_rule_validates_every_field(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as info:
        RetryRule(**kwargs)
    assert str(info.value) == message


def test_rule_keeps_its_own_backoff() -> None:
    policy = ExponentialBackoff(base=0.1)
    assert RetryRule(OSError, backoff=policy).backoff is policy


# --------------------------------------------------------------------------
# retry_after_of: the delay an exception carries.


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, 5.0),
        (0, 0.0),
        (1.5, 1.5),
        (Fraction(1, 2), 0.5),
        (datetime.timedelta(seconds=2.5), 2.5),
        (datetime.timedelta(minutes=1), 60.0),
    ],
)
def test_retry_after_of_reads_numbers_and_timedeltas(value: Any, expected: float) -> None:
    result = retry_after_of(RetryAfterError(value))
    assert result == expected
    assert type(result) is float


@pytest.mark.parametrize(
    "value",
    [
        None,
        -1,
        -0.5,
        datetime.timedelta(seconds=-1),
        NAN,
        INF,
        -INF,
        10**400,
        True,
        "5",
        b"5",
        [5],
        object(),
    ],
)
def test_retry_after_of_ignores_nonsensical_values(value: Any) -> None:
    assert retry_after_of(RetryAfterError(value)) is None


def test_retry_after_of_is_none_without_the_attribute() -> None:
    assert retry_after_of(OSError()) is None


def test_retry_after_of_propagates_errors_from_the_attribute() -> None:
    class Broken(Exception):
        @property
        def retry_after(self) -> float:
            raise RuntimeError("broken property")

    with pytest.raises(RuntimeError, match="broken property"):
        retry_after_of(Broken())


# --------------------------------------------------------------------------
# retry_delay: backoff, retry_after floor, next-tick cap.

RULE = RetryRule(OSError)


def test_retry_delay_is_the_backoff_delay_without_bounds() -> None:
    tracker = EXACT.tracker()
    assert retry_delay(RULE, tracker, OSError(), now=0.0, next_tick=None) == 2.0
    assert retry_delay(RULE, tracker, OSError(), now=1.0, next_tick=None) == 4.0


def test_retry_delay_caps_at_the_next_tick() -> None:
    tracker = EXACT.tracker()
    assert retry_delay(RULE, tracker, OSError(), now=100.0, next_tick=100.5) == 0.5


def test_retry_delay_is_zero_when_the_next_tick_is_already_past() -> None:
    tracker = EXACT.tracker()
    assert retry_delay(RULE, tracker, OSError(), now=100.0, next_tick=90.0) == 0.0


def test_retry_delay_does_not_cap_when_the_rule_says_so() -> None:
    rule = RetryRule(OSError, cap_at_next_tick=False)
    tracker = EXACT.tracker()
    assert retry_delay(rule, tracker, OSError(), now=100.0, next_tick=100.5) == 2.0


def test_retry_delay_honours_retry_after_even_beyond_the_next_tick() -> None:
    rule = RetryRule(RetryAfterError)
    tracker = EXACT.tracker()
    assert retry_delay(rule, tracker, RetryAfterError(30), now=0.0, next_tick=1.0) == 30.0


def test_retry_after_is_a_floor_not_a_replacement_for_the_backoff() -> None:
    rule = RetryRule(RetryAfterError)
    tracker = EXACT.tracker()
    assert retry_delay(rule, tracker, RetryAfterError(0.5), now=0.0, next_tick=None) == 2.0


def test_retry_after_floor_applies_after_the_next_tick_cap() -> None:
    rule = RetryRule(RetryAfterError)
    tracker = EXACT.tracker()
    # Backoff 2 s, capped to the 1 s left until the next tick; the floor of
    # 0.5 s is already met.
    assert retry_delay(rule, tracker, RetryAfterError(0.5), now=0.0, next_tick=1.0) == 1.0


def test_retry_delay_ignores_retry_after_when_the_rule_says_so() -> None:
    rule = RetryRule(RetryAfterError, honour_retry_after=False)
    tracker = EXACT.tracker()
    assert retry_delay(rule, tracker, RetryAfterError(30), now=0.0, next_tick=1.0) == 1.0
    assert retry_delay(rule, tracker, RetryAfterError(30), now=1.0, next_tick=None) == 4.0


def test_retry_delay_counts_exactly_one_failure_at_now() -> None:
    tracker = EXACT.tracker()
    retry_delay(RULE, tracker, OSError(), now=0.0, next_tick=0.0)
    assert tracker.attempt == 1
    retry_delay(RULE, tracker, OSError(), now=1.0, next_tick=None)
    assert tracker.attempt == 2
    # ``now`` reaches the tracker: a long quiet period resets the count.
    assert retry_delay(RULE, tracker, OSError(), now=10_000.0, next_tick=None) == 2.0
    assert tracker.attempt == 1


@pytest.mark.parametrize(
    ("now", "next_tick", "error", "message"),
    [
        (NAN, None, ValueError, "'now' must be finite (got nan)"),
        (0.0, NAN, ValueError, "'next_tick' must be finite (got nan)"),
        (0.0, INF, ValueError, "'next_tick' must be finite (got inf)"),
        (0.0, "1", TypeError, "'next_tick' must be a number (got '1')"),
    ],
)
def test_retry_delay_validates_times_before_counting(
    now: Any, next_tick: Any, error: type[Exception], message: str
) -> None:
    tracker = EXACT.tracker()
    with pytest.raises(error) as info:
        retry_delay(RULE, tracker, OSError(), now=now, next_tick=next_tick)
    assert str(info.value) == message
    assert tracker.attempt == 0


# --------------------------------------------------------------------------
# Property: delays stay within the window, attempts within what the sequence allows.

policies = st.builds(
    ExponentialBackoff,
    base=st.floats(min_value=1e-3, max_value=1e3),
    cap=st.floats(min_value=1e-3, max_value=1e6),
    jitter=st.booleans(),
    reset_after=st.none() | st.floats(min_value=1e-3, max_value=1e4),
    reset_after_successes=st.none() | st.integers(min_value=1, max_value=5),
)
# A step is a failure after a gap in seconds, or a success (None).
steps = st.lists(st.none() | st.floats(min_value=0.0, max_value=5e3), max_size=60)


@settings(deadline=None)
@given(policy=policies, sequence=steps, seed=st.integers(min_value=0, max_value=2**32))
def test_delays_stay_in_the_window_and_attempts_within_the_sequence(
    policy: ExponentialBackoff, sequence: list[float | None], seed: int
) -> None:
    tracker = policy.tracker(random.Random(seed))
    now = 0.0
    # Failures since the last reset by successes (an upper bound for attempt),
    # and whether a quiet-period reset could have happened since then.
    failures = 0
    successes = 0
    quiet_reset_possible = False
    for gap in sequence:
        if gap is None:
            tracker.success()
            if failures:
                successes += 1
                if (
                    policy.reset_after_successes is not None
                    and successes >= policy.reset_after_successes
                ):
                    failures = successes = 0
                    quiet_reset_possible = False
            assert 0 <= tracker.attempt <= failures
            continue
        # The tracker sees now - last_failure, which may round differently
        # from gap.
        elapsed = (now + gap) - now
        now += gap
        if failures and policy.reset_after is not None and elapsed > policy.reset_after:
            quiet_reset_possible = True
        delay = tracker.failure(now)
        failures += 1
        successes = 0
        assert 1 <= tracker.attempt <= failures
        if not quiet_reset_possible:
            assert tracker.attempt == failures
        window = policy.window(tracker.attempt)
        assert 0.0 <= delay <= window <= policy.cap
        assert math.isfinite(delay)
        if not policy.jitter:
            assert delay == window
