"""An actor's path: kept as the tree links change, not rebuilt on every read.

The path is read on every observed iteration, in every event and log line;
it is made on first use and kept, and attaching an actor to a supervisor or
detaching it drops the kept paths of its whole subtree. These tests check it
always says where the actor is, whether it was read before a change or not.
"""

from __future__ import annotations

import asyncio
from typing import Any

from supervised_loops import Supervisor, child, instrument, loop
from supervised_loops.testing import virtual_time


def make_loop(name: str) -> Any:
    @loop(seconds=10, name=name)
    async def body() -> None:
        pass

    return body


def test_a_standalone_actors_path_is_its_name() -> None:
    assert make_loop("poller").path == "poller"


def test_a_nested_tree_built_bottom_up_renames_the_subtree_it_joins() -> None:
    leaf = make_loop("leaf")
    inner = Supervisor(leaf, name="inner")
    assert leaf.path == "inner/leaf"
    middle = Supervisor(inner, name="middle")
    assert (inner.path, leaf.path) == ("middle/inner", "middle/inner/leaf")
    root = Supervisor(middle, name="app")
    assert (root.path, middle.path, inner.path, leaf.path) == (
        "app",
        "app/middle",
        "app/middle/inner",
        "app/middle/inner/leaf",
    )


def test_a_path_first_read_after_the_tree_is_built_is_right_from_the_leaf_up() -> None:
    leaf = make_loop("leaf")
    inner = Supervisor(leaf, name="inner")
    root = Supervisor(Supervisor(inner, name="middle"), name="app")
    assert leaf.path == "app/middle/inner/leaf"  # no path read before: all made now
    assert (root.path, inner.path) == ("app", "app/middle/inner")


def test_a_kept_path_of_a_leaf_changes_when_an_ancestor_above_its_parent_moves() -> None:
    leaf = make_loop("leaf")
    inner = Supervisor(leaf, name="inner")
    middle = Supervisor(inner, name="middle")
    assert leaf.path == "middle/inner/leaf"  # kept now, for leaf, inner and middle
    Supervisor(middle, name="app")
    assert leaf.path == "app/middle/inner/leaf"


def test_a_child_specs_name_is_the_childs_name_in_paths() -> None:
    leaf = make_loop("leaf")
    root = Supervisor(child(Supervisor(leaf, name="inner"), name="renamed"), name="app")
    assert root.lookup("renamed").path == "app/renamed"
    assert leaf.path == "app/renamed/leaf"


@virtual_time()
async def test_a_subtree_added_and_deleted_at_run_time_follows_its_links() -> None:
    root = Supervisor(make_loop("first"), name="app")
    leaf = make_loop("leaf")
    branch = Supervisor(leaf, name="branch")
    await root.start()
    try:
        await root.start_child(branch)
        assert leaf.path == "app/branch/leaf"
        await root.terminate_child("branch")
        await root.delete_child("branch")
        assert (branch.path, leaf.path) == ("branch", "branch/leaf")
    finally:
        await root.stop()


@virtual_time()
async def test_the_instrumentation_is_told_the_path_the_loop_has_when_it_runs() -> None:
    paths: list[str] = []

    class Paths:
        observes_starts = False

        def iteration_started(self, *begun: object) -> object:
            return None

        def iteration_ended(self, path: str, *values: object) -> None:
            paths.append(path)

        def iteration_skipped(self, *values: object) -> None:
            pass

    leaf = make_loop("leaf")
    standalone = leaf.start()
    await asyncio.sleep(1)
    leaf.cancel()
    await asyncio.wait((standalone,))
    previous = instrument.install(Paths())
    try:
        root = Supervisor(Supervisor(leaf, name="inner"), name="app")
        await root.start()
        await asyncio.sleep(1)
        await root.stop()
    finally:
        instrument.install(previous)
    assert paths == ["app/inner/leaf"]
