"""Bad input is refused at the call that passed it, with one message shape.

Every public constructor and function, every parameter, every kind of bad
value: a wrong type raises ``TypeError``, a wrong value ``ValueError``, and
the message reads ``'<name>' must be <rule> (got <value>)`` with the name the
user wrote. The grid below is built from two tables: the public parameters
(which call, which parameter, which rule) and, per rule, the bad values with
the exact message each must produce. See docs/loops.md, "Validation".
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import math
import re
from collections.abc import Callable
from typing import Any

import pytest
from aiostream import stream

from supervised_loops import (
    BackoffTracker,
    ChangeInterval,
    Cron,
    DailyAt,
    Every,
    ExponentialBackoff,
    GetStatus,
    Loop,
    Quarantine,
    Restart,
    RetryRule,
    Supervisor,
    Worker,
    child,
    loop,
    serve,
    streams,
    worker,
)
from supervised_loops.render import format_relative, render_status
from supervised_loops.testing import VirtualClock, virtual_time

HUGE = 10**400  # an int no float can hold: float(HUGE) raises OverflowError


async def job() -> None:
    pass


def a_loop() -> Any:
    return loop(seconds=1)(job)


def exactly(text: str) -> str:
    return "^" + re.escape(text) + "$"


def huge_shown() -> str:
    # 10**400 is 401 characters; messages keep the ends of long reprs and say
    # how long they were, in 200 characters at most.
    return r"10{89}\.\.\.0{90} \(401 characters\)"


def call(function: Callable[[], Any]) -> Any:
    """Call ``function``; a coroutine it returns is run (the check is in its body)."""
    result = function()
    if inspect.iscoroutine(result):
        return asyncio.run(result)
    return result


# -- rules: the bad values of each, and the message each must give ------------------

Case = tuple[str, Any, type[Exception], str]  # id, value, error, message regex


LONGEST = "<= 31536000000 (1000 years)"


def seconds_cases(
    name: str, *, zero: bool = True, none: bool = False, limited: bool = True
) -> list[Case]:
    """A duration in seconds: a finite number, >= 0 (or > 0 when ``zero`` is false).

    ``limited``: at most 1000 years. The parts of an interval (``seconds``,
    ``minutes``, ``hours``) are not limited one by one; their total is.
    """
    below = ">= 0" if zero else "> 0"
    too_long = re.escape(f"'{name}' must be {LONGEST}")
    cases: list[Case] = [
        ("str", "1", TypeError, exactly(f"'{name}' must be a number (got '1')")),
        ("bool", True, TypeError, exactly(f"'{name}' must be a number (got True)")),
        ("complex", 1j, TypeError, exactly(f"'{name}' must be a number (got 1j)")),
        ("nan", math.nan, ValueError, exactly(f"'{name}' must be finite (got nan)")),
        ("inf", math.inf, ValueError, exactly(f"'{name}' must be finite (got inf)")),
        ("-inf", -math.inf, ValueError, exactly(f"'{name}' must be finite (got -inf)")),
        ("negative", -1, ValueError, exactly(f"'{name}' must be {below} (got -1)")),
        ("tiny-negative", -1e-9, ValueError, exactly(f"'{name}' must be {below} (got -1e-09)")),
    ]
    if limited:
        cases += [
            ("huge", HUGE, ValueError, f"^{too_long} \\(got {huge_shown()}\\)$"),
            ("1e300", 1e300, ValueError, exactly(f"'{name}' must be {LONGEST} (got 1e+300)")),
            (
                "1000-years-and-a-second",
                31_536_000_001,
                ValueError,
                exactly(f"'{name}' must be {LONGEST} (got 31536000001)"),
            ),
        ]
    else:
        cases.append(
            ("huge", HUGE, ValueError, f"^'{name}' must be finite \\(got {huge_shown()}\\)$")
        )
    if not zero:
        cases.append(("zero", 0, ValueError, exactly(f"'{name}' must be > 0 (got 0)")))
    if not none:
        cases.append(("none", None, TypeError, exactly(f"'{name}' must be a number (got None)")))
    return cases


def number_cases(name: str) -> list[Case]:
    """A finite number of either sign (an instant, or a step of the wall clock)."""
    return [case for case in seconds_cases(name, limited=False) if not case[0].endswith("negative")]


def int_cases(name: str, *, minimum: int, none: bool = False) -> list[Case]:
    """An int (``bool`` refused) of at least ``minimum``."""
    rule = "> 0" if minimum == 1 else f">= {minimum}"
    cases: list[Case] = [
        ("str", "1", TypeError, exactly(f"'{name}' must be an int (got '1')")),
        ("float", 1.0, TypeError, exactly(f"'{name}' must be an int (got 1.0)")),
        ("bool", True, TypeError, exactly(f"'{name}' must be an int (got True)")),
        ("nan", math.nan, TypeError, exactly(f"'{name}' must be an int (got nan)")),
        ("inf", math.inf, TypeError, exactly(f"'{name}' must be an int (got inf)")),
        ("below", minimum - 1, ValueError, exactly(f"'{name}' must be {rule} (got {minimum - 1})")),
        (
            "-huge",
            -HUGE,
            ValueError,
            f"^'{name}' must be {re.escape(rule)} \\(got -10{{88}}\\.\\.\\.",
        ),
    ]
    if not none:
        cases.append(("none", None, TypeError, exactly(f"'{name}' must be an int (got None)")))
    return cases


def bool_cases(name: str) -> list[Case]:
    """A bool, not merely something truthy."""
    return [
        (label, value, TypeError, exactly(f"'{name}' must be a bool (got {value!r})"))
        for label, value in (("int", 1), ("zero", 0), ("str", "yes"), ("none", None))
    ]


def name_cases(name: str) -> list[Case]:
    """An actor name: a non-empty str without '/'."""
    rule = "non-empty and without '/'"
    return [
        ("empty", "", ValueError, exactly(f"'{name}' must be {rule} (got '')")),
        ("slash", "a/b", ValueError, exactly(f"'{name}' must be {rule} (got 'a/b')")),
        ("int", 5, TypeError, exactly(f"'{name}' must be a str (got 5)")),
        ("bytes", b"x", TypeError, exactly(f"'{name}' must be a str (got b'x')")),
    ]


def timeout_cases(name: str, *, none: bool) -> list[Case]:
    """A child's shutdown/cancel timeout: seconds >= 0 or 'infinity' (or None)."""
    rule = "a number, 'infinity'" + (" or None" if none else "")
    forever = "finite, or 'infinity' to wait forever"
    cases: list[Case] = [
        ("str", "10", TypeError, exactly(f"'{name}' must be {rule} (got '10')")),
        ("bool", True, TypeError, exactly(f"'{name}' must be {rule} (got True)")),
        ("nan", math.nan, ValueError, exactly(f"'{name}' must be {forever} (got nan)")),
        ("inf", math.inf, ValueError, exactly(f"'{name}' must be {forever} (got inf)")),
        ("huge", HUGE, ValueError, f"^'{name}' must be {re.escape(LONGEST)} \\(got 10"),
        ("negative", -1, ValueError, exactly(f"'{name}' must be >= 0 (got -1)")),
    ]
    if not none:
        cases.append(("none", None, TypeError, exactly(f"'{name}' must be {rule} (got None)")))
    return cases


# -- the public parameters: (call with the value, parameter, its cases) ------------


def build(factory: Callable[[Any], Any]) -> Callable[[Any], Callable[[], Any]]:
    return lambda value: lambda: factory(value)


def _subscription_of(max_pending: Any) -> Any:
    return a_loop().events(max_pending=max_pending)


def _streams_events(max_pending: Any) -> Any:
    return streams.events(a_loop(), max_pending=max_pending)


PARAMETERS: list[tuple[str, Callable[[Any], Any], list[Case]]] = [
    # loop() and its interval, as discord.ext.tasks users write it
    *(
        # None is read as 0, as discord.ext.tasks does (``seconds or 0``)
        (
            f"loop({part}=)",
            lambda v, p=part: loop(**{p: v}),
            seconds_cases(part, none=True, limited=False),
        )
        for part in ("seconds", "minutes", "hours")
    ),
    ("loop(count=)", lambda v: loop(seconds=1, count=v), int_cases("count", minimum=1, none=True)),
    ("loop(reconnect=)", lambda v: loop(reconnect=v), bool_cases("reconnect")),
    ("loop(wait_first=)", lambda v: loop(wait_first=v), bool_cases("wait_first")),
    ("loop(name=)", lambda v: loop(name=v), name_cases("name")),
    (
        "loop(max_consecutive_failures=)",
        lambda v: loop(max_consecutive_failures=v),
        int_cases("max_consecutive_failures", minimum=1, none=True),
    ),
    ("loop(mailbox_size=)", lambda v: loop(mailbox_size=v), int_cases("mailbox_size", minimum=1)),
    # changing the interval: the message and the method share loop()'s rules
    *(
        (f"ChangeInterval({part}=)", lambda v, p=part: ChangeInterval(**{p: v}), cases)
        for part in ("seconds", "minutes", "hours")
        for cases in [[case for case in seconds_cases(part, limited=False) if case[0] != "none"]]
    ),
    *(
        (
            f"Loop.change_interval({part}=)",
            lambda v, p=part: a_loop().change_interval(**{p: v}),
            seconds_cases(part, none=True, limited=False),
        )
        for part in ("seconds", "minutes", "hours")
    ),
    *(
        (f"Every({part}=)", lambda v, p=part: Every(**{p: v}), seconds_cases(part, limited=False))
        for part in ("seconds", "minutes", "hours")
    ),
    # workers
    ("worker(name=)", lambda v: worker(job, name=v), name_cases("name")),
    *(
        (f"worker({flag}=)", lambda v, f=flag: worker(job, **{f: v}), bool_cases(flag))
        for flag in ("signals_ready", "cooperative_stop", "reconnect")
    ),
    (
        "Worker(mailbox_size=)",
        lambda v: Worker(job, mailbox_size=v),
        int_cases("mailbox_size", minimum=1),
    ),
    # supervisors and child specs
    (
        "Supervisor(max_restarts=)",
        lambda v: Supervisor(max_restarts=v),
        int_cases("max_restarts", minimum=0, none=True),
    ),
    (
        "Supervisor(max_seconds=)",
        lambda v: Supervisor(max_seconds=v),
        seconds_cases("max_seconds", zero=False, none=True),
    ),
    ("Supervisor(name=)", lambda v: Supervisor(name=v), name_cases("name")),
    (
        "Supervisor(mailbox_size=)",
        lambda v: Supervisor(mailbox_size=v),
        int_cases("mailbox_size", minimum=1),
    ),
    ("child(name=)", lambda v: child(a_loop(), name=v), name_cases("name")),
    ("child(significant=)", lambda v: child(a_loop(), significant=v), bool_cases("significant")),
    (
        "child(shutdown=)",
        lambda v: child(a_loop(), shutdown=v),
        timeout_cases("shutdown", none=True),
    ),
    (
        "child(cancel_timeout=)",
        lambda v: child(a_loop(), cancel_timeout=v),
        timeout_cases("cancel_timeout", none=False),
    ),
    (
        "Quarantine(max_restarts=)",
        lambda v: Quarantine(max_restarts=v),
        int_cases("max_restarts", minimum=0),
    ),
    *(
        (f"Quarantine({field}=)", lambda v, f=field: Quarantine(**{f: v}), cases)
        for field in ("max_seconds", "probe_every")
        for cases in [seconds_cases(field, zero=False)]
    ),
    # backoff and retry rules
    *(
        (f"ExponentialBackoff({field}=)", lambda v, f=field: ExponentialBackoff(**{f: v}), cases)
        for field, cases in (
            ("base", seconds_cases("base", zero=False)),
            ("cap", seconds_cases("cap", zero=False)),
            ("reset_after", seconds_cases("reset_after", zero=False, none=True)),
            ("jitter", bool_cases("jitter")),
            (
                "reset_after_successes",
                int_cases("reset_after_successes", minimum=1, none=True),
            ),
        )
    ),
    *(
        (f"RetryRule({flag}=)", lambda v, f=flag: RetryRule(OSError, **{f: v}), bool_cases(flag))
        for flag in ("honour_retry_after", "cap_at_next_tick")
    ),
    # asking, events, streams
    (
        "Actor.ask(timeout=)",
        lambda v: a_loop().ask(GetStatus(), timeout=v),
        seconds_cases("timeout", none=True),
    ),
    ("Actor.events(max_pending=)", _subscription_of, int_cases("max_pending", minimum=1)),
    ("streams.events(max_pending=)", _streams_events, int_cases("max_pending", minimum=1)),
    (
        "streams.windows(seconds)",
        lambda v: streams.windows(stream.iterate([]), v),
        seconds_cases("seconds", zero=False),
    ),
    (
        "streams.rate(seconds)",
        lambda v: streams.rate(stream.iterate([]), v),
        seconds_cases("seconds", zero=False),
    ),
    # virtual time
    (
        "VirtualClock.suspend(seconds)",
        lambda v: VirtualClock().suspend(v),
        seconds_cases("seconds"),
    ),
    (
        "VirtualClock.step_wall(seconds)",
        lambda v: VirtualClock().step_wall(v),
        number_cases("seconds"),
    ),
    # the service
    (
        "serve(shutdown_timeout=)",
        lambda v: serve(a_loop(), shutdown_timeout=v),
        seconds_cases("shutdown_timeout"),
    ),
]

GRID = [
    pytest.param(factory, value, error, message, id=f"{label}-{case_id}")
    for label, factory, cases in PARAMETERS
    for case_id, value, error, message in cases
]


@pytest.mark.parametrize(("factory", "value", "error", "message"), GRID)
def test_every_public_parameter_refuses_bad_values_with_one_message_shape(
    factory: Callable[[Any], Any], value: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        call(lambda: factory(value))


def test_the_grid_covers_every_rule_for_every_parameter() -> None:
    # A parameter whose row lost its cases would silently test nothing.
    assert all(len(cases) >= 4 for _, _, cases in PARAMETERS)
    assert len(GRID) > 300


@pytest.mark.parametrize(
    ("label", "factory"),
    [
        ("loop(count=10**400)", lambda: loop(seconds=1, count=HUGE)),
        ("loop(mailbox_size=10**400)", lambda: loop(mailbox_size=HUGE)),
        ("Supervisor(max_restarts=10**400)", lambda: Supervisor(max_restarts=HUGE)),
        ("Supervisor(max_seconds=1000 years)", lambda: Supervisor(max_seconds=31_536_000_000)),
        (
            "a supervised child with Quarantine(max_restarts=10**400)",
            lambda: Supervisor(child(a_loop(), quarantine=Quarantine(max_restarts=HUGE))),
        ),
        ("ExponentialBackoff(cap=1000 years)", lambda: ExponentialBackoff(cap=31_536_000_000)),
        ("Every(hours=1000 * 8760)", lambda: Every(hours=1000 * 8760)),
        (
            "ExponentialBackoff(reset_after_successes=10**400)",
            lambda: ExponentialBackoff(reset_after_successes=HUGE),
        ),
        ("Every(seconds=1e-6)", lambda: Every(seconds=1e-6)),
        ("Actor.events(max_pending=10**400)", lambda: a_loop().events(max_pending=HUGE)),
        ("child(shutdown='infinity')", lambda: child(a_loop(), shutdown="infinity")),
    ],
)
def test_extreme_but_valid_values_are_accepted(label: str, factory: Callable[[], Any]) -> None:
    factory()  # neither OverflowError nor a refusal


# -- the cases users met, one test each -----------------------------------------------


@pytest.mark.parametrize(
    ("args", "shown"),
    [(5, "5"), ("abc", "'abc'"), (b"abc", "b'abc'"), ({1, 2}, "{1, 2}")],
)
def test_restart_refuses_args_that_are_not_a_sequence_of_arguments(args: Any, shown: str) -> None:
    with pytest.raises(
        TypeError, match=exactly(f"'args' must be a sequence of positional arguments (got {shown})")
    ):
        Restart(args=args)


def test_restart_refuses_kwargs_whose_keys_are_not_strings() -> None:
    with pytest.raises(
        TypeError,
        match=exactly("'kwargs' must be a mapping of keyword arguments with str keys (got {1: 2})"),
    ):
        Restart(kwargs={1: 2})
    with pytest.raises(TypeError, match=r"^'kwargs' must be a mapping"):
        Restart(kwargs=[("a", 1)])  # type: ignore[arg-type]


def test_restart_keeps_good_arguments_as_an_immutable_copy() -> None:
    given = {"a": 1}
    message = Restart(args=[1, 2], kwargs=given)
    given["a"] = 2
    assert message.args == (1, 2)
    assert dict(message.kwargs or {}) == {"a": 1}
    assert Restart().args is None
    assert Restart().kwargs is None


def test_child_spec_refuses_kwargs_whose_keys_are_not_strings() -> None:
    with pytest.raises(TypeError, match=r"^'kwargs' must be a mapping of keyword arguments"):
        child(a_loop(), kwargs={1: 2})  # type: ignore[dict-item]


def test_change_interval_message_with_nothing_set_is_refused() -> None:
    with pytest.raises(
        TypeError,
        match=exactly(
            "one of 'seconds', 'minutes', 'hours', 'time' or 'schedule' must be given"
            " (got none; seconds=0 runs back to back)"
        ),
    ):
        ChangeInterval()
    with pytest.raises(TypeError, match="must be given"):
        ChangeInterval(seconds=None, time=None)


def test_change_interval_message_with_an_explicit_zero_is_back_to_back() -> None:
    assert ChangeInterval(seconds=0).schedule == Every()


async def test_change_interval_method_without_arguments_keeps_discord_meaning() -> None:
    # discord.ext.tasks: change_interval() sets the interval to 0 (back to back).
    printer = loop(minutes=5)(job)
    printer.change_interval()
    assert (printer.seconds, printer.minutes, printer.hours) == (0.0, 0.0, 0.0)
    assert printer.schedule == Every()


def test_a_negative_part_is_refused_even_when_the_total_is_positive() -> None:
    with pytest.raises(ValueError, match=exactly("'minutes' must be >= 0 (got -1)")):
        loop(seconds=90, minutes=-1)
    with pytest.raises(ValueError, match=exactly("'minutes' must be >= 0 (got -1)")):
        a_loop().change_interval(seconds=90, minutes=-1)


def test_an_empty_loop_name_is_refused_at_the_call_not_replaced() -> None:
    with pytest.raises(
        ValueError, match=exactly("'name' must be non-empty and without '/' (got '')")
    ):
        loop(name="")
    with pytest.raises(
        ValueError, match=exactly("'name' must be non-empty and without '/' (got '')")
    ):
        worker(job, name="")


def test_every_loop_option_is_checked_by_loop_itself_before_decorating() -> None:
    # loop(...) alone raises: the bad option fails on the line that wrote it.
    with pytest.raises(ValueError, match=exactly("'count' must be > 0 (got 0)")):
        loop(seconds=1, count=0)
    with pytest.raises(
        ValueError, match=exactly("'missed' must be one of 'catch_up', 'skip' (got 'drop')")
    ):
        loop(missed="drop")  # type: ignore[arg-type]
    with pytest.raises(
        TypeError, match=exactly("'missed' must be one of 'catch_up', 'skip' (got 1)")
    ):
        loop(missed=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=exactly("'retry[1]' must be a RetryRule (got 'x')")):
        loop(retry=[RetryRule(OSError), "x"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=exactly("'retry' must be an iterable (got 5)")):
        loop(retry=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=exactly("'overlap' must be a bool or an int (got 1.5)")):
        loop(overlap=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=exactly("'overlap' must be > 0 (got 0)")):
        loop(overlap=0)


@virtual_time()
async def test_loop_retry_given_as_an_iterator_is_kept_whole() -> None:
    # loop() checks the rules before decorating; an iterator must not be used
    # up by that check: the second rule still retries its KeyError.
    no_wait = ExponentialBackoff(base=0.001, jitter=False)
    rules = iter([RetryRule(OSError, backoff=no_wait), RetryRule(KeyError, backoff=no_wait)])
    calls = 0

    @loop(seconds=1, count=1, retry=rules)
    async def once() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise KeyError("transient")

    await once.start()
    assert calls == 2
    assert not once.failed()


async def test_ask_with_a_timeout_of_10_to_the_400_is_refused() -> None:
    with pytest.raises(
        ValueError, match=f"^'timeout' must be {re.escape(LONGEST)} \\(got {huge_shown()}\\)$"
    ):
        await a_loop().ask(GetStatus(), timeout=HUGE)


def test_supervisor_max_seconds_of_10_to_the_400_is_refused() -> None:
    with pytest.raises(
        ValueError, match=f"^'max_seconds' must be {re.escape(LONGEST)} \\(got {huge_shown()}\\)$"
    ):
        Supervisor(max_seconds=HUGE)


def test_worker_refuses_exception_types_that_are_never_retried() -> None:
    with pytest.raises(
        ValueError, match=r"^'exception_types\[1\]' must be retryable: not KeyboardInterrupt"
    ):
        worker(job, exception_types=(OSError, asyncio.CancelledError))
    with pytest.raises(
        TypeError, match=exactly("'exception_types' must be an iterable (got <class 'OSError'>)")
    ):
        worker(job, exception_types=OSError)  # type: ignore[arg-type]


def test_schedules_refuse_bad_input_with_the_same_shape() -> None:
    with pytest.raises(TypeError, match=exactly("'expression' must be a str (got 5)")):
        Cron(5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=exactly("'time' must be a non-empty sequence (got [])")):
        DailyAt([])
    with pytest.raises(TypeError, match=exactly("'time[1]' must be a datetime.time (got '09:00')")):
        DailyAt([dt.time(8), "09:00"])  # type: ignore[list-item]


def test_a_value_whose_repr_raises_is_still_reported() -> None:
    class Opaque:
        def __repr__(self) -> str:
            raise RuntimeError("repr is broken")

    with pytest.raises(
        TypeError, match=r"^'seconds' must be a number \(got <.*Opaque object at 0x"
    ):
        Every(seconds=Opaque())  # type: ignore[arg-type]


def test_an_int_past_the_digit_limit_is_reported_without_its_digits() -> None:
    with pytest.raises(
        ValueError, match=r"^'seconds' must be finite \(got <int of more than \d+ digits>\)$"
    ):
        Every(seconds=10**5000)


@pytest.mark.parametrize("width", [8, 20, 60, 200])
@pytest.mark.parametrize(
    "value",
    [10**4000, "x" * 5_000, list(range(1_000)), [[[]]] * 500],
    ids=["int", "str", "list", "nested"],
)
def test_a_shown_value_fits_its_width_and_says_how_long_it_was(width: int, value: Any) -> None:
    from supervised_loops import _validate

    shown = _validate.show(value, width)
    assert len(shown) <= width
    assert shown.startswith(repr(value)[:2])
    if width >= 40:
        assert shown.endswith(f" ({len(repr(value))} characters)")


def test_a_value_nested_past_the_recursion_limit_is_still_reported() -> None:
    from supervised_loops import _validate

    nested: list[Any] = []
    for _ in range(100_000):
        nested = [nested]
    assert _validate.show(nested).startswith("<list object at 0x")


# -- parameters with a rule of their own: one row each ---------------------------------

OTHER_RULES: list[Any] = [
    pytest.param(
        lambda: Supervisor(strategy="one_for_none"),
        ValueError,
        "'strategy' must be one of 'one_for_one', 'one_for_all', 'rest_for_one'"
        " (got 'one_for_none')",
        id="Supervisor(strategy=) unknown",
    ),
    pytest.param(
        lambda: Supervisor(strategy=1),
        TypeError,
        "'strategy' must be one of 'one_for_one', 'one_for_all', 'rest_for_one' (got 1)",
        id="Supervisor(strategy=) not a str",
    ),
    pytest.param(
        lambda: Supervisor(auto_shutdown=True),
        TypeError,
        "'auto_shutdown' must be one of 'never', 'any_significant', 'all_significant' (got True)",
        id="Supervisor(auto_shutdown=) bool",
    ),
    pytest.param(
        lambda: child(a_loop(), restart="sometimes"),
        ValueError,
        "'restart' must be one of 'permanent', 'transient', 'temporary' (got 'sometimes')",
        id="child(restart=) unknown",
    ),
    pytest.param(
        lambda: Supervisor(backoff=2.0),
        TypeError,
        "'backoff' must be an ExponentialBackoff or None (got 2.0)",
        id="Supervisor(backoff=)",
    ),
    pytest.param(
        lambda: loop(backoff=2.0),
        TypeError,
        "'backoff' must be an ExponentialBackoff or None (got 2.0)",
        id="loop(backoff=)",
    ),
    pytest.param(
        lambda: worker(job, backoff=2.0),
        TypeError,
        "'backoff' must be an ExponentialBackoff or None (got 2.0)",
        id="worker(backoff=)",
    ),
    pytest.param(
        lambda: Supervisor(quarantine=3),
        TypeError,
        "'quarantine' must be a Quarantine or None (got 3)",
        id="Supervisor(quarantine=)",
    ),
    pytest.param(
        lambda: BackoffTracker(ExponentialBackoff, None),
        TypeError,
        "'policy' must be an ExponentialBackoff"
        " (got <class 'supervised_loops.ExponentialBackoff'>)",
        id="BackoffTracker(policy)",
    ),
    pytest.param(
        lambda: BackoffTracker(ExponentialBackoff(), rng=42),
        TypeError,
        "'rng' must be a random.Random or None (got 42)",
        id="BackoffTracker(rng=)",
    ),
    pytest.param(
        lambda: worker(job, retry=RetryRule(OSError)),
        TypeError,
        "'retry' must be an iterable (got RetryRule(exceptions=(<class 'OSError'>,), when=None,"
        " backoff=None, honour_retry_after=True, cap_at_next_tick=True))",
        id="worker(retry=) a single rule",
    ),
    pytest.param(
        lambda: serve(a_loop(), control=""),
        TypeError,
        "'control' must be a bool or a non-empty path (got '')",
        id="serve(control=) empty",
    ),
    pytest.param(
        lambda: serve(a_loop(), control=5),
        TypeError,
        "'control' must be a bool or a non-empty path (got 5)",
        id="serve(control=) int",
    ),
    pytest.param(
        lambda: serve(a_loop(), handle_signals=None),
        TypeError,
        "'handle_signals' must be a bool (got None)",
        id="serve(handle_signals=)",
    ),
    pytest.param(
        lambda: serve(a_loop(), on_started=1),
        TypeError,
        "'on_started' must be callable or None (got 1)",
        id="serve(on_started=)",
    ),
    pytest.param(
        lambda: render_status(a_loop().status(), now="now"),
        TypeError,
        "'now' must be an aware datetime (got 'now')",
        id="render_status(now=) str",
    ),
    pytest.param(
        lambda: render_status(a_loop().status(), now=dt.datetime(2026, 1, 1)),
        ValueError,
        "'now' must be an aware datetime (got datetime.datetime(2026, 1, 1, 0, 0))",
        id="render_status(now=) naive",
    ),
    pytest.param(
        lambda: render_status("app"),
        TypeError,
        "'status' must be an ActorStatus (got 'app')",
        id="render_status(status)",
    ),
    pytest.param(
        lambda: format_relative(dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 1, tzinfo=dt.UTC)),
        ValueError,
        "'moment' must be an aware datetime (got datetime.datetime(2026, 1, 1, 0, 0))",
        id="format_relative(moment) naive",
    ),
    pytest.param(
        lambda: streams.by_glob(stream.iterate([]), 5),
        TypeError,
        "'pattern' must be a str (got 5)",
        id="streams.by_glob(pattern) int",
    ),
    pytest.param(
        lambda: streams.by_subtree(stream.iterate([]), "a//b"),
        ValueError,
        "'root' must be an actor path of non-empty names joined by '/', such as"
        " 'app/pair/a' (got 'a//b')",
        id="streams.by_subtree(root)",
    ),
    pytest.param(
        lambda: streams.windows(stream.iterate([]), 1, emit_empty=1),
        TypeError,
        "'emit_empty' must be a bool (got 1)",
        id="streams.windows(emit_empty=)",
    ),
    pytest.param(
        lambda: VirtualClock().set_wall("x"),
        TypeError,
        "'moment' must be a datetime (got 'x')",
        id="VirtualClock.set_wall(moment)",
    ),
    pytest.param(
        lambda: virtual_time(start=5),
        TypeError,
        "'start' must be a datetime (got 5)",
        id="virtual_time(start=)",
    ),
    pytest.param(
        lambda: Supervisor().ask_at("", GetStatus(), timeout=math.nan),
        ValueError,
        "'timeout' must be finite (got nan)",
        id="Supervisor.ask_at(timeout=)",
    ),
    pytest.param(
        lambda: RetryRule(OSError, when=3),
        TypeError,
        "'when' must be callable or None (got 3)",
        id="RetryRule(when=)",
    ),
    pytest.param(
        lambda: RetryRule(()),
        ValueError,
        "'exceptions' must be at least one exception class (got ())",
        id="RetryRule(exceptions=) empty",
    ),
    pytest.param(
        lambda: a_loop().add_exception_type("OSError"),
        TypeError,
        "'exceptions[0]' must be an exception class (got 'OSError')",
        id="Loop.add_exception_type() str",
    ),
    pytest.param(
        lambda: a_loop().add_retry_rule(OSError),
        TypeError,
        "'rule' must be a RetryRule (got <class 'OSError'>)",
        id="Loop.add_retry_rule()",
    ),
    pytest.param(
        lambda: a_loop().before_loop(print),
        TypeError,
        "'before_loop' must be a coroutine function (got <built-in function print>)",
        id="Loop.before_loop()",
    ),
    pytest.param(
        lambda: worker(print),
        TypeError,
        "'function' must be a coroutine function (got <built-in function print>)",
        id="worker(function)",
    ),
    pytest.param(
        lambda: child(42),
        TypeError,
        "'actor' must be an Actor (a Loop, a Supervisor, a worker, ...) (got 42)",
        id="child(actor)",
    ),
    pytest.param(
        lambda: Supervisor(42),
        TypeError,
        "'child' must be a ChildSpec or an Actor (got 42)",
        id="Supervisor(*children)",
    ),
    pytest.param(
        lambda: Supervisor().lookup(5),
        TypeError,
        "'path' must be a str (got 5)",
        id="Supervisor.lookup(path)",
    ),
    pytest.param(
        lambda: loop(schedule=42),
        TypeError,
        "'schedule' must be an object with a next_after(moment) method (got 42)",
        id="loop(schedule=)",
    ),
    pytest.param(
        lambda: Loop(job, schedule=None),
        TypeError,
        "'schedule' must be an object with a next_after(moment) method (got None)",
        id="Loop(schedule=None)",
    ),
    pytest.param(
        lambda: Cron(""),
        ValueError,
        "'expression' must be 5 fields (minute hour day-of-month month day-of-week)"
        " or a macro such as @daily (got '')",
        id="Cron(expression) empty",
    ),
    pytest.param(
        lambda: Cron("* * * * *", tz="UTC"),
        TypeError,
        "'tz' must be a datetime.tzinfo such as zoneinfo.ZoneInfo('Europe/Berlin') (got 'UTC')",
        id="Cron(tz=)",
    ),
    pytest.param(
        lambda: Every(seconds=1).next_after(dt.datetime(2026, 1, 1)),
        ValueError,
        "'moment' must be an aware datetime (got datetime.datetime(2026, 1, 1, 0, 0))",
        id="Schedule.next_after(naive)",
    ),
    pytest.param(
        lambda: VirtualClock(start="2026-01-01"),
        TypeError,
        "'start' must be a datetime (got '2026-01-01')",
        id="VirtualClock(start=)",
    ),
    pytest.param(
        lambda: streams.by_type(stream.iterate([]), int),
        TypeError,
        "'types[0]' must be an Event subclass (got <class 'int'>)",
        id="streams.by_type(types)",
    ),
    pytest.param(
        lambda: streams.by_path(stream.iterate([]), "app//a"),
        ValueError,
        "'paths[0]' must be an actor path of non-empty names joined by '/', such as"
        " 'app/pair/a' (got 'app//a')",
        id="streams.by_path(paths)",
    ),
    pytest.param(
        lambda: streams.by_path(stream.iterate([]), "app", markers=1),
        TypeError,
        "'markers' must be a bool (got 1)",
        id="streams.by_path(markers=)",
    ),
]


@pytest.mark.parametrize(("factory", "error", "message"), OTHER_RULES)
def test_parameters_with_their_own_rule_refuse_bad_values_in_the_same_shape(
    factory: Callable[[], Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=exactly(message)):
        call(factory)


@pytest.mark.parametrize(
    "verb",
    ["child", "terminate_child", "delete_child"],
)
def test_supervisor_child_verbs_refuse_a_name_that_is_not_a_str(verb: str) -> None:
    tree = Supervisor(child(a_loop(), name="a"))
    with pytest.raises(TypeError, match=exactly("'name' must be a str (got 5)")):
        call(lambda: getattr(tree, verb)(5))
