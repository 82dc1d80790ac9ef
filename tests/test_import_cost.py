"""What ``import supervised_loops`` loads: the service layer only on first use.

A program that only runs loops should not pay at import for the control
socket, JSON, time-zone data and paths that ``run``/``serve`` need.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

import supervised_loops

SERVICE_ONLY = ("supervised_loops.service", "json", "zoneinfo", "pathlib")


def _loaded_after(code: str) -> set[str]:
    probe = (
        f"import sys\n{code}\nprint(' '.join(m for m in {SERVICE_ONLY!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(done.stdout.split())


def test_importing_the_package_leaves_the_service_layer_unloaded() -> None:
    assert _loaded_after("import supervised_loops") == set()


def test_a_loop_and_a_tree_run_without_loading_the_service_layer() -> None:
    code = (
        "import asyncio\n"
        "from supervised_loops import Supervisor, loop\n"
        "@loop(seconds=0, count=2)\n"
        "async def work(): pass\n"
        "async def main():\n"
        "    tree = Supervisor(work, name='t')\n"
        "    await tree.start()\n"
        "    tree.status()\n"
        "    await tree.stop()\n"
        "asyncio.run(main())"
    )
    assert _loaded_after(code) == set()


def test_run_and_serve_load_on_first_use_and_say_they_are_ours() -> None:
    code = (
        "import supervised_loops\n"
        "assert supervised_loops.run.__module__ == 'supervised_loops'\n"
        "from supervised_loops import serve\n"
        "assert serve.__module__ == 'supervised_loops'\n"
        "assert 'run' in dir(supervised_loops)"
    )
    assert "supervised_loops.service" in _loaded_after(code)


def test_an_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        supervised_loops.nothing_here  # noqa: B018
