"""The Supervisor's public face: specs, settings, lifecycle, messages, status, paths.

Child specs and settings are validated where they are written, with the
field named; ``start``/``stop``/``wait``/``async with`` follow the documented
contract; a supervisor is an actor taking ``Stop``, ``Cancel``,
``GetStatus`` and its own messages; actors are found and reached by path.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Iterable
from typing import Any

import pytest
from test_supervisor_support import Boom, Journal, Probe, exactly

from supervised_loops import (
    INFINITY,
    Ack,
    Actor,
    ActorNotRunning,
    ActorStatus,
    AutoShutdown,
    Cancel,
    ChildNotFound,
    ChildSpec,
    ChildStartFailed,
    ExponentialBackoff,
    GetStatus,
    Pause,
    Quarantine,
    RestartIntensityExceeded,
    RestartType,
    State,
    Stop,
    Strategy,
    Supervisor,
    UnhandledMessage,
    child,
    dead_letters,
    loop,
)
from supervised_loops.testing import virtual_time


async def nothing() -> None:
    pass


def a_loop(name: str = "work") -> Any:
    return loop(seconds=1, name=name)(nothing)


# -- child specs ---------------------------------------------------------------------


def test_a_bare_actor_gets_the_documented_defaults() -> None:
    work = a_loop()
    spec = ChildSpec(work)
    assert spec == child(work)
    assert spec.name == "work"
    assert spec.restart is RestartType.PERMANENT
    assert spec.shutdown == 5.0
    assert spec.cancel_timeout == 5.0
    assert spec.significant is False
    assert spec.backoff is None
    assert spec.quarantine is None
    assert spec.args == ()
    assert dict(spec.kwargs) == {}


def test_a_supervisor_child_defaults_to_an_unlimited_shutdown() -> None:
    spec = child(Supervisor(name="sub"))
    assert spec.shutdown == INFINITY
    assert spec.cancel_timeout == INFINITY


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        (
            {"restart": "sometimes"},
            ValueError,
            "'restart' must be one of 'permanent', 'transient', 'temporary' (got 'sometimes')",
        ),
        ({"shutdown": -1}, ValueError, "'shutdown' must be >= 0 (got -1)"),
        (
            {"shutdown": math.inf},
            ValueError,
            "'shutdown' must be finite, or 'infinity' to wait forever (got inf)",
        ),
        (
            {"shutdown": "10"},
            TypeError,
            "'shutdown' must be a number, 'infinity' or None (got '10')",
        ),
        ({"cancel_timeout": -0.5}, ValueError, "'cancel_timeout' must be >= 0 (got -0.5)"),
        (
            {"cancel_timeout": None},
            TypeError,
            "'cancel_timeout' must be a number, 'infinity' (got None)",
        ),
        (
            {"cancel_timeout": "infinity"},
            ValueError,
            "'cancel_timeout' may be 'infinity' only for a Supervisor: a child that swallows "
            "cancellation would hang the shutdown (got 'infinity')",
        ),
        (
            {"significant": True},
            ValueError,
            "'significant' children must be transient or temporary: a permanent child is "
            "always restarted, so it never ends for good (got restart='permanent')",
        ),
        ({"significant": 1}, TypeError, "'significant' must be a bool (got 1)"),
        ({"name": "a/b"}, ValueError, "'name' must be non-empty and without '/' (got 'a/b')"),
        (
            {"args": "abc"},
            TypeError,
            "'args' must be a sequence of positional arguments (got 'abc')",
        ),
        (
            {"backoff": 2.0},
            TypeError,
            "'backoff' must be an ExponentialBackoff or None (got 2.0)",
        ),
        ({"quarantine": 3}, TypeError, "'quarantine' must be a Quarantine or None (got 3)"),
    ],
)
def test_a_bad_spec_fails_on_construction_naming_the_field(
    fields: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=exactly(message)):
        child(a_loop(), **fields)


def test_a_spec_needs_an_actor() -> None:
    prefix = re.escape("'actor' must be an Actor (a Loop, a Supervisor, a worker, ...) (got ")
    with pytest.raises(TypeError, match=f"^{prefix}<function nothing"):
        child(nothing)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "error", "message"),
    [
        ({"max_restarts": -1}, ValueError, "'max_restarts' must be >= 0 (got -1)"),
        (
            {"max_seconds": 0},
            ValueError,
            "'max_seconds' must be > 0 (got 0)",
        ),
        (
            {"probe_every": "1"},
            TypeError,
            "'probe_every' must be a number (got '1')",
        ),
    ],
)
def test_a_bad_quarantine_policy_fails_on_construction(
    fields: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=exactly(message)):
        Quarantine(**fields)


# -- settings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "error", "message"),
    [
        (
            {"strategy": "one_for_some"},
            ValueError,
            "'strategy' must be one of 'one_for_one', 'one_for_all', 'rest_for_one' "
            "(got 'one_for_some')",
        ),
        ({"max_restarts": -1}, ValueError, "'max_restarts' must be >= 0 (got -1)"),
        ({"max_restarts": 1.5}, TypeError, "'max_restarts' must be an int (got 1.5)"),
        ({"max_seconds": 0}, ValueError, "'max_seconds' must be > 0 (got 0)"),
        ({"max_seconds": math.nan}, ValueError, "'max_seconds' must be finite (got nan)"),
        (
            {"auto_shutdown": "sometimes"},
            ValueError,
            "'auto_shutdown' must be one of 'never', 'any_significant', 'all_significant' "
            "(got 'sometimes')",
        ),
        ({"backoff": 1}, TypeError, "'backoff' must be an ExponentialBackoff or None (got 1)"),
        ({"quarantine": 1}, TypeError, "'quarantine' must be a Quarantine or None (got 1)"),
        ({"name": ""}, ValueError, "'name' must be non-empty and without '/' (got '')"),
    ],
)
def test_bad_settings_fail_on_construction_naming_the_setting(
    settings: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=exactly(message)):
        Supervisor(**settings)


def test_settings_default_to_otp_like_values_and_read_back_as_given() -> None:
    tree = Supervisor()
    assert tree.name == "supervisor"
    assert tree.strategy is Strategy.ONE_FOR_ONE
    assert (tree.max_restarts, tree.max_seconds) == (3, 5.0)
    assert tree.auto_shutdown is AutoShutdown.NEVER
    assert tree.backoff is None
    assert tree.quarantine is None
    custom = Supervisor(strategy="one_for_all", max_restarts=0, max_seconds=1, name="x")
    assert (custom.strategy, custom.max_restarts, custom.max_seconds) == (
        Strategy.ONE_FOR_ALL,
        0,
        1.0,
    )


def test_class_attributes_declare_settings_and_the_constructor_overrides_them() -> None:
    class Pair(Supervisor):
        strategy = "one_for_all"
        max_restarts = 5
        backoff = ExponentialBackoff(base=2.0)

    pair = Pair()
    assert pair.name == "pair"
    assert (pair.strategy, pair.max_restarts, pair.max_seconds) == (Strategy.ONE_FOR_ALL, 5, 5.0)
    assert pair.backoff == ExponentialBackoff(base=2.0)
    assert Pair(max_restarts=1, name="p").max_restarts == 1


def test_duplicate_child_names_are_refused() -> None:
    with pytest.raises(
        ValueError,
        match=exactly(
            "supervisor 'app' already has a child named 'work'; names must be unique among siblings"
        ),
    ):
        Supervisor(a_loop(), a_loop(), name="app")


def test_a_spec_name_renames_the_child_so_paths_and_lookup_agree() -> None:
    work = a_loop()
    tree = Supervisor(child(work, name="renamed"), name="app")
    assert work.name == "renamed"
    assert work.path == "app/renamed"
    assert tree.lookup("renamed") is work


def test_an_actor_has_one_supervisor() -> None:
    work = a_loop()
    Supervisor(work, name="first")
    with pytest.raises(
        ValueError,
        match=exactly(
            "actor 'first/work' is already supervised by 'first'; an actor has one supervisor"
        ),
    ):
        Supervisor(work, name="second")


def test_significant_children_need_an_auto_shutdown_setting() -> None:
    with pytest.raises(
        ValueError,
        match=exactly(
            "child 'work' is significant but supervisor 'app' has auto_shutdown='never'; set "
            "auto_shutdown to 'any_significant' or 'all_significant'"
        ),
    ):
        Supervisor(child(a_loop(), restart="transient", significant=True), name="app")


def test_a_child_must_be_a_spec_or_an_actor() -> None:
    with pytest.raises(
        TypeError, match=exactly("'child' must be a ChildSpec or an Actor (got 42)")
    ):
        Supervisor(42)  # type: ignore[arg-type]


# -- lifecycle ------------------------------------------------------------------------------


@virtual_time()
async def test_start_returns_once_every_child_is_ready_in_order() -> None:
    ready: list[tuple[float, str]] = []

    def slow_setup(name: str, seconds: float) -> Any:
        work = a_loop(name)

        @work.before_loop
        async def setup() -> None:
            await asyncio.sleep(seconds)
            ready.append((asyncio.get_running_loop().time(), name))

        return work

    tree = Supervisor(slow_setup("a", 2), slow_setup("b", 1), name="app")
    await tree.start()
    assert ready == [(2.0, "a"), (3.0, "b")]  # b began only once a was ready
    assert asyncio.get_running_loop().time() == 3.0
    assert tree.is_running()
    assert tree.status().state is State.RUNNING
    await tree.stop()
    assert not tree.is_running()
    assert tree.status().state is State.STOPPED


@virtual_time()
async def test_a_child_failing_before_it_is_ready_fails_the_start() -> None:
    journal = Journal()
    a = Probe(journal, "a")
    broken = a_loop("broken")

    @broken.before_loop
    async def setup() -> None:
        raise Boom("no database")

    @broken.error
    async def quiet(error: BaseException) -> None:
        pass

    c = Probe(journal, "c")
    tree = Supervisor(child(a.loop), child(broken), child(c.loop), name="app")
    with pytest.raises(
        ChildStartFailed, match=exactly("child 'broken' of supervisor 'app' failed to start")
    ) as caught:
        await tree.start()
    assert str(caught.value.__cause__) == "no database"
    assert (caught.value.supervisor, caught.value.child) == ("app", "broken")
    assert journal.take() == ["start a", "stop a"]
    assert tree.failed()


@virtual_time()
async def test_start_twice_is_refused_and_a_stopped_tree_starts_again() -> None:
    journal = Journal()
    a = Probe(journal, "a")
    tree = Supervisor(a.loop, name="app")
    await tree.start()
    with pytest.raises(
        RuntimeError, match=exactly("supervisor 'app' is already running; stop() it first")
    ):
        await tree.start()
    await tree.stop()
    await tree.start()
    assert a.loop.is_running()
    assert journal.take() == ["start a", "stop a", "start a"]
    await tree.stop()


@virtual_time()
async def test_wait_and_wait_ready_before_any_start_are_refused() -> None:
    tree = Supervisor(name="app")
    with pytest.raises(RuntimeError, match=exactly("supervisor 'app' was never started")):
        await tree.wait()
    with pytest.raises(RuntimeError, match=exactly("supervisor 'app' was never started")):
        await tree.wait_ready()
    await tree.stop()  # nothing to stop: returns at once


@virtual_time()
async def test_async_with_starts_and_stops_and_raises_a_failure_of_the_tree() -> None:
    journal = Journal()
    a = Probe(journal, "a")
    tree = Supervisor(a.loop, max_restarts=0, name="app")

    async def use() -> None:
        async with tree as entered:
            assert entered is tree
            assert a.loop.is_running()
            a.fail_next(Boom("x"))
            a.loop.run_now()
            await asyncio.sleep(1)

    with pytest.raises(RestartIntensityExceeded, match="exceeded its restart intensity"):
        await use()
    assert journal.take() == ["start a", "fail a", "stop a"]


@virtual_time()
async def test_async_with_lets_the_bodys_own_error_through() -> None:
    tree = Supervisor(a_loop(), name="app")
    with pytest.raises(Boom, match="body"):
        async with tree:
            raise Boom("body")
    assert not tree.is_running()


# -- messages ----------------------------------------------------------------------------------


@virtual_time()
async def test_get_status_returns_the_tree_with_its_children() -> None:
    inner = Supervisor(a_loop("b"), name="inner")
    tree = Supervisor(a_loop("a"), inner, name="app")
    assert tree.status().state is State.IDLE
    async with tree:
        status = await tree.ask(GetStatus())
    assert isinstance(status, ActorStatus)
    assert (status.name, status.kind, status.state) == ("app", "supervisor", State.RUNNING)
    assert [(c.path, c.kind) for c in status.children] == [
        ("app/a", "loop"),
        ("app/inner", "supervisor"),
    ]
    assert [c.path for c in status.children[1].children] == ["app/inner/b"]


@virtual_time()
async def test_asked_stop_is_acknowledged_once_the_tree_has_ended() -> None:
    journal = Journal()
    a = Probe(journal, "a")
    tree = Supervisor(a.loop, name="app")
    await tree.start()
    ack = await tree.ask(Stop())
    assert ack == Ack(Stop(), 0, None)
    assert not tree.is_running()
    assert journal.take() == ["start a", "stop a"]


@virtual_time()
async def test_asked_cancel_ends_the_tree_cancelled() -> None:
    tree = Supervisor(a_loop(), name="app")
    await tree.start()
    ack = await tree.ask(Cancel())
    assert ack.message == Cancel()
    assert tree.status().state is State.CANCELLED
    await tree.wait()  # cancelled is not failed


@virtual_time()
async def test_messages_to_a_stopped_supervisor_are_dead_letters() -> None:
    tree = Supervisor(name="app")
    tree.tell(Stop())
    assert dead_letters.count == 1
    with pytest.raises(ActorNotRunning):
        await tree.ask(Cancel())
    assert [letter.reason for letter in dead_letters.recent] == ["not running", "not running"]


@virtual_time()
async def test_a_supervisor_refuses_loop_only_and_unhandled_messages() -> None:
    tree = Supervisor(name="app")
    async with tree:
        with pytest.raises(UnhandledMessage):
            await tree.ask(Pause())
        tree.tell("hello")
        with pytest.raises(UnhandledMessage):
            await tree.ask("hello")
        assert tree.is_running()
    assert [letter.reason for letter in dead_letters.recent] == [
        "a supervisor is not paused as a whole; pause its loops one by one, "
        "or stop it (its children stop with it) and restart it later",
        "no handle_message",
        "no handle_message",
    ]


@virtual_time()
async def test_a_subclass_handles_its_own_messages_in_order() -> None:
    class Counter(Supervisor):
        def __init__(self) -> None:
            super().__init__(name="counter")
            self.total = 0

        async def handle_message(self, message: Any) -> Any:
            if isinstance(message, int):
                self.total += message
                return self.total
            return await super().handle_message(message)

    tree = Counter()
    async with tree:
        tree.tell(2)
        tree.tell(3)
        assert await tree.ask(5) == 10
        with pytest.raises(UnhandledMessage):
            await tree.ask("text")
        assert tree.is_running()


# -- paths --------------------------------------------------------------------------------------


@virtual_time()
async def test_lookup_and_messages_by_path() -> None:
    poller = a_loop("poller")
    ingest = Supervisor(poller, name="ingest")
    tree = Supervisor(ingest, name="app")
    assert tree.lookup("ingest/poller") is poller
    assert tree.lookup("ingest") is ingest
    assert tree.lookup("") is tree
    with pytest.raises(ChildNotFound, match=exactly("supervisor 'app' has no child 'ingest/x'")):
        tree.lookup("ingest/x")
    with pytest.raises(ChildNotFound):
        tree.lookup("ingest/poller/deeper")
    async with tree:
        status = await tree.ask_at("ingest/poller", GetStatus())
        assert status.path == "app/ingest/poller"
        tree.tell_at("ingest/poller", Pause())
        await asyncio.sleep(0)
        assert poller.status().state is State.PAUSED
        tree.tell_at("nowhere", Pause())
        assert [(d.path, d.reason) for d in dead_letters.recent] == [
            ("app/nowhere", "no such actor")
        ]


def test_lookup_wants_a_string() -> None:
    with pytest.raises(TypeError, match=exactly("'path' must be a str (got 3)")):
        Supervisor(name="app").lookup(3)  # type: ignore[arg-type]


@virtual_time()
async def test_children_declared_on_the_class_are_per_instance_loops() -> None:
    class Ingest(Supervisor):
        strategy = "rest_for_one"

        def __init__(self, source: str) -> None:
            super().__init__(name="ingest")
            self.source = source
            self.seen: list[str] = []

        @loop(seconds=1)
        async def poller(self) -> None:
            self.seen.append(self.source)

        def children(self) -> Iterable[ChildSpec | Actor]:
            return [child(self.poller)]

    first, second = Ingest("one"), Ingest("two")
    async with first, second:
        await asyncio.sleep(1.5)
    assert first.seen == ["one", "one"]
    assert second.seen == ["two", "two"]
    assert first.poller is not second.poller
    assert first.poller.path == "ingest/poller"


@virtual_time()
async def test_children_may_be_a_class_level_list() -> None:
    work = a_loop("work")

    class Holder(Supervisor):
        children = (child(work, restart="transient"),)  # type: ignore[assignment]

    tree = Holder(name="holder")
    async with tree:
        assert tree.lookup("work") is work
        assert tree.which_children()[0].restart is RestartType.TRANSIENT
