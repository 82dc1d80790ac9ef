"""A random tree, random failures and control messages, checked against invariants.

Hypothesis draws a two-level tree (a root, a sub-supervisor, loops with
random restart types under random strategies and intensities) and a
timeline of actions: loops failing, ending, being cancelled; ``restart_child``
and ``terminate_child``; messages to the root; ``GetStatus``, ``Stop`` and
``Cancel`` sent by path. Everything runs in virtual time, so each example is
deterministic. After the tree has stopped (or failed), these must hold:

* shutdown order: while a supervisor shuts down gracefully, its children
  stop in reverse start order; once the shutdown is forced (``Cancel`` of
  that supervisor or of its parent, or the forced end of the whole tree, as
  ``run()``'s second signal does), the children still running are cancelled
  in one pass: each of their ``after_loop`` handlers begins within one
  event-loop cycle of the request, in no defined order among them, and all
  of them after those the graceful part stopped, which stay latest first;
* a supervisor's ``after_stop`` comes after the ``after_loop`` of every
  child of that run, graceful or forced;
* intensity: no window of ``max_seconds`` holds more than ``max_restarts``
  restarts of one supervisor, and a supervisor gives up exactly when one
  more would exceed it (never earlier);
* every failure reaches the loop's error handler exactly once, and the
  supervisor's ``on_child_failure`` exactly once;
* no message is lost: each message told to the root is handled or is a
  dead letter;
* no task is left running once the tree has stopped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_supervisor_support import Boom

from supervised_loops import (
    Actor,
    Cancel,
    Child,
    ChildSpec,
    Every,
    GetStatus,
    Loop,
    State,
    Stop,
    Supervisor,
    child,
)
from supervised_loops.events import (
    DeadLetter,
    IntensityExceeded,
)
from supervised_loops.messages import Exit
from supervised_loops.testing import DEFAULT_START, VirtualClock

START = DEFAULT_START.timestamp()


class World:
    """What the example observed."""

    def __init__(self) -> None:
        # (supervisor path, child, shutting down, forced, late): the child is
        # "" for the supervisor's own after_stop, "<start>" when its run begins;
        # forced: the supervisor's shutdown had been forced; late: began more
        # than one event-loop cycle after it was.
        self.stops: list[tuple[str, str, bool, bool, bool]] = []
        self.forced: dict[str, Forcing] = {}  # supervisor path -> its run's forced shutdown
        self.raised: list[Boom] = []
        self.handled: list[BaseException] = []
        self.reported: list[BaseException] = []
        self.messages_sent = 0
        # ("run", path) when a supervisor starts; ("exit", path, time, restart type,
        # exit kind) when it is about to decide on a child's exit.
        self.decisions: list[tuple[Any, ...]] = []
        self.messages_handled = 0

    def force(self, *supervisors: Supervisor) -> None:
        """The driver has just forced the shutdown of these supervisors' running runs."""
        forcing = Forcing()
        for supervisor in supervisors:
            if supervisor.is_running():
                self.forced[supervisor.path] = forcing

    def record(self, parent: Supervisor, name: str, caused: bool) -> None:
        forcing = self.forced.get(parent.path)
        late = forcing is not None and forcing.over
        self.stops.append((parent.path, name, caused, forcing is not None, late))


class Forcing:
    """A forced shutdown, and whether the event-loop cycle after its own is over.

    Made right after the request: the pass it made has woken every task it
    cancelled, so a callback queued now runs after their next steps, and the
    one that callback queues marks the end of the following cycle.
    """

    def __init__(self) -> None:
        self.over = False
        event_loop = asyncio.get_running_loop()
        event_loop.call_soon(event_loop.call_soon, self._end)

    def _end(self) -> None:
        self.over = True


class Leaf:
    def __init__(self, world: World, name: str, busy: float = 0.0) -> None:
        self.world = world
        self.fail_next: Boom | None = None
        self.told = 0  # Stops, Cancels and verbs from the driver on their way

        async def body() -> None:
            if busy:
                await asyncio.sleep(busy)  # a Stop waits for this, within the grace
            error = self.fail_next
            if error is not None:
                self.fail_next = None
                world.raised.append(error)
                raise error

        body.__name__ = name
        self.loop = Loop(body, schedule=Every(seconds=1.0), name=name)

        @self.loop.after_loop
        async def after() -> None:
            parent = self.loop.parent
            assert isinstance(parent, Supervisor)
            # Only stops the supervisor's shutdown caused count for the order.
            caused = parent.status().state is State.STOPPING
            caused = caused and not self.loop.failed() and not self.told
            self.told = max(0, self.told - 1)
            world.record(parent, self.loop.name, caused)

        @self.loop.error
        async def handler(error: BaseException) -> None:
            world.handled.append(error)


class Node(Supervisor):
    """A supervisor that reports what the invariants need."""

    def __init__(self, world: World, specs: Iterable[ChildSpec | Actor], **settings: Any) -> None:
        super().__init__(**settings)
        self.world = world
        self.specs = list(specs)
        self.told = 0

    def children(self) -> Iterable[ChildSpec | Actor]:
        return self.specs

    async def on_child_failure(self, child: Child, error: BaseException) -> None:
        self.world.reported.append(error)

    async def before_start(self) -> None:
        self.world.decisions.append(("run", self.path))
        self.world.forced.pop(self.path, None)  # a new run: not forced
        self.world.stops.append((self.path, "<start>", False, False, False))

    async def on_child_exit(self, child: Child, exit: Exit) -> None:
        # Nothing is awaited between this hook and the decision: same instant, same state.
        if self.status().state is not State.STOPPING:
            moment = asyncio.get_running_loop().time()
            entry = (
                "exit",
                self.path,
                moment,
                child.restart.value,
                exit.kind.value,
                exit.requested,
            )
            self.world.decisions.append(entry)

    async def after_stop(self) -> None:
        self.world.stops.append((self.path, "", False, False, False))  # its shutdown is over
        parent = self.parent
        if isinstance(parent, Supervisor):
            caused = parent.status().state is State.STOPPING
            caused = caused and not self.failed() and not self.told
            self.told = max(0, self.told - 1)
            self.world.record(parent, self.name, caused)

    async def handle_message(self, message: Any) -> Any:
        self.world.messages_handled += 1
        return message


def _spec(item: ChildSpec | Actor) -> ChildSpec:
    return item if isinstance(item, ChildSpec) else child(item)


RESTART = st.sampled_from(["permanent", "transient", "temporary"])
STRATEGY = st.sampled_from(["one_for_one", "one_for_all", "rest_for_one"])
BUSY = st.sampled_from([0.0, 0.0, 0.5, 3.0])  # 3 s outlasts the 1 s grace: cancelled

FAIL = st.tuples(st.just("fail"), st.integers(0, 5))
ACTION = st.one_of(
    FAIL,
    FAIL,
    FAIL,
    FAIL,
    st.tuples(st.just("stop"), st.integers(0, 5)),
    st.tuples(st.just("cancel"), st.integers(0, 5)),
    st.tuples(st.just("restart_child"), st.integers(0, 3)),
    st.tuples(st.just("terminate_child"), st.integers(0, 3)),
    st.tuples(st.just("delete_child"), st.integers(0, 3)),
    st.tuples(st.just("start_child"), st.integers(0, 0)),
    st.tuples(st.just("message"), st.integers(0, 0)),
    st.tuples(st.just("status"), st.integers(0, 5)),
    st.tuples(st.just("stop_sub"), st.integers(0, 0)),
    st.tuples(st.just("cancel_sub"), st.integers(0, 0)),
)

TREE = st.fixed_dictionaries(
    {
        "root_strategy": STRATEGY,
        "root_restarts": st.integers(0, 4),
        "sub_strategy": STRATEGY,
        "sub_restarts": st.integers(0, 4),
        "root_leaves": st.lists(st.tuples(RESTART, BUSY), min_size=1, max_size=3),
        "sub_leaves": st.lists(st.tuples(RESTART, BUSY), min_size=1, max_size=3),
        "sub_restart": RESTART,
        # How the tree ends: a graceful stop; a Cancel of the root (forced at
        # once); a graceful stop forced after a while (run()'s second signal).
        "ending": st.sampled_from(["stop", "stop", "cancel", "stop_then_force"]),
        "force_after": st.integers(0, 12).map(lambda quarter: quarter / 4),
        "timeline": st.lists(
            st.tuples(st.integers(0, 80).map(lambda quarter: quarter / 4), ACTION),
            max_size=25,
        ),
    }
)


async def scenario(plan: dict[str, Any]) -> None:
    world = World()
    sub_leaves = [Leaf(world, f"s{i}", busy) for i, (_, busy) in enumerate(plan["sub_leaves"])]
    sub = Node(
        world,
        [
            child(leaf.loop, restart=restart, shutdown=1.0)
            for leaf, (restart, _) in zip(sub_leaves, plan["sub_leaves"], strict=True)
        ],
        strategy=plan["sub_strategy"],
        max_restarts=plan["sub_restarts"],
        max_seconds=5.0,
        name="sub",
    )
    root_leaves = [Leaf(world, f"r{i}", busy) for i, (_, busy) in enumerate(plan["root_leaves"])]
    specs: list[ChildSpec | Actor] = [
        child(leaf.loop, restart=restart, shutdown=1.0)
        for leaf, (restart, _) in zip(root_leaves, plan["root_leaves"], strict=True)
    ]
    specs.insert(1, child(sub, restart=plan["sub_restart"]))
    root = Node(
        world,
        specs,
        strategy=plan["root_strategy"],
        max_restarts=plan["root_restarts"],
        max_seconds=5.0,
        name="root",
    )
    leaves = root_leaves + sub_leaves
    events: list[Any] = []
    subscription = root.events(max_pending=100_000)

    async def collect() -> None:
        async for event in subscription:
            events.append(event)

    collector = asyncio.ensure_future(collect())
    event_loop = asyncio.get_running_loop()
    await root.start()
    verbs: list[asyncio.Future[Any]] = []
    added: list[str] = []  # dynamic children, in the order they were asked for
    for moment, (kind, index) in sorted(plan["timeline"], key=lambda item: item[0]):
        await asyncio.sleep(max(0.0, moment - event_loop.time()))
        if not root.is_running():
            if kind == "message":
                world.messages_sent += 1
                root.tell(("hello", moment))
            continue
        leaf = leaves[index % len(leaves)]
        if kind == "fail" and leaf.loop.is_running():
            leaf.fail_next = Boom(f"{leaf.loop.name} at {moment}")
            leaf.loop.run_now()
        elif kind == "stop":
            leaf.told += leaf.loop.is_running()
            leaf.loop.tell(Stop())
        elif kind == "cancel":
            leaf.told += leaf.loop.is_running()
            leaf.loop.tell(Cancel())
        elif kind == "start_child":
            extra = Leaf(world, f"x{len(leaves)}")
            leaves.append(extra)
            added.append(extra.loop.name)
            verbs.append(asyncio.ensure_future(root.start_child(child(extra.loop, shutdown=1.0))))
        elif kind in ("restart_child", "terminate_child", "delete_child"):
            names = [info.name for info in root.which_children()]
            if names:
                name = names[index % len(names)]
                target = sub if name == "sub" else next(x for x in leaves if x.loop.name == name)
                target.told += 1  # the verb stops it: not a shutdown stop
                verbs.append(asyncio.ensure_future(getattr(root, kind)(name)))
        elif kind == "message":
            world.messages_sent += 1
            root.tell(("hello", moment))
        elif kind == "status":
            root.tell_at("sub", GetStatus())
            status = root.status()
            assert status.name == "root"
        elif kind == "stop_sub":
            sub.told += sub.is_running()
            root.tell_at("sub", Stop())
        elif kind == "cancel_sub":
            sub.told += sub.is_running()
            root.tell_at("sub", Cancel())
            world.force(sub)
        await asyncio.sleep(0)
    if plan["ending"] == "cancel" and root.is_running():
        root.tell(Cancel())
        world.force(root, sub)
    elif plan["ending"] == "stop_then_force" and root.is_running():
        stopping = asyncio.ensure_future(root.stop())
        await asyncio.sleep(plan["force_after"])
        if root.is_running():
            root._force_cancel()  # what run()'s second signal and its timeout do
            world.force(root, sub)
        await stopping
    else:
        await root.stop()
    task = root.get_task()
    assert task is not None
    await asyncio.wait((task,))
    await asyncio.gather(*verbs, return_exceptions=True)
    for _ in range(5):
        await asyncio.sleep(0)
    subscription.close()
    await collector

    # No task left running once the tree has stopped.
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert not root.is_running()
    assert not any(leaf.loop.is_running() for leaf in leaves)

    # Shutdown order: while a supervisor shuts down gracefully, its children stop
    # latest first; once forced, those left begin their after_loop within one
    # event-loop cycle, in any order among them, after the graceful ones.
    ranks = {
        "root": {
            name: rank for rank, name in enumerate([_spec(spec).name for spec in specs] + added)
        },
        "root/sub": {leaf.loop.name: rank for rank, leaf in enumerate(sub_leaves)},
    }
    for path in ("root", "root/sub"):
        graceful: list[int] = []
        forced: list[int] = []
        for parent, name, stopping, was_forced, late in world.stops:
            if parent != path:
                continue
            if not stopping:
                graceful, forced = [], []
                continue
            rank = ranks[path][name]
            assert rank not in graceful + forced, (path, world.stops)
            if was_forced:
                # Cancelled in one pass with the others left: no order among them.
                assert not graceful or rank < graceful[-1], (path, world.stops)
                assert name == "sub" or not late, (path, world.stops)  # a loop: at once
                forced.append(rank)
            else:
                assert not forced, (path, world.stops)  # forced stays forced
                assert not graceful or rank < graceful[-1], (path, world.stops)
                graceful.append(rank)

    # A supervisor's after_stop comes after the after_loop of every child of that run.
    over: set[str] = set()
    for parent, name, _, _, _ in world.stops:
        if name == "<start>":
            over.discard(parent)
        elif name == "":
            over.add(parent)
        else:
            assert parent not in over, (parent, name, world.stops)

    # Intensity, against a model: replay every exit the supervisor decided on, with
    # OTP's restart rules (a child asked to stop stays down) and a fresh window per
    # run; it must give up exactly when the model says (the restart that would be
    # one too many), never earlier or later.
    for path, limit in (("root", plan["root_restarts"]), ("root/sub", plan["sub_restarts"])):
        expected: list[float] = []
        window: list[float] = []
        given_up = False
        for entry in world.decisions:
            if entry[1] != path:
                continue
            if entry[0] == "run":
                window, given_up = [], False
                continue
            _, _, moment, restart, kind, requested = entry
            if given_up or (requested and kind != "failed"):
                continue  # a child asked to stop stays down: no restart to count
            if restart == "permanent" or (restart == "transient" and kind == "failed"):
                window = [t for t in window if t > moment - 5.0]
                if len(window) == limit:
                    expected.append(moment)
                    given_up = True
                else:
                    window.append(moment)
        actual = [
            event.at.timestamp() - START
            for event in events
            if isinstance(event, IntensityExceeded) and event.path == path
        ]
        assert actual == expected, (path, world.decisions)

    # Every failure reaches the loop's handler, and the supervisor, exactly once.
    assert sorted(map(id, world.handled)) == sorted(map(id, world.raised))
    reported = [error for error in world.reported if isinstance(error, Boom)]  # not sub's own
    assert sorted(map(id, reported)) == sorted(map(id, world.raised))

    # No message is lost: handled, or a dead letter.
    letters = sum(
        1
        for event in events
        if isinstance(event, DeadLetter) and event.path == "root" and "hello" in event.message
    )
    assert world.messages_handled + letters == world.messages_sent


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(plan=TREE)
def test_random_trees_keep_the_supervision_invariants(plan: dict[str, Any]) -> None:
    VirtualClock().run(scenario(plan))
