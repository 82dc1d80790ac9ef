"""Shared fixtures.

Long timings run in virtual time: ``@pytest.mark.virtual_time`` and the
``virtual_clock`` fixture of the library's pytest plugin (newer tests), or
the ``supervised_loops.testing.virtual_time`` decorator (older ones); the
few real-time tests say so in their names.
"""

from __future__ import annotations

import inspect

import pytest

from supervised_loops import dead_letters


@pytest.fixture(autouse=True)
def _fresh_dead_letters() -> None:
    """Each test counts its own dead letters."""
    dead_letters.clear()


#: Words in a test's name that mark it slow: it brute-forces a schedule or
#: explores random trees.
_SLOW_NAMES = ("brute_force", "random_trees", "random_control_sequences", "real_process")
#: Words in a test's source that mark it slow: it starts another process.
_SLOW_SOURCE = ("subprocess", "run_ctl(", "sys.executable")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the tests that start processes or brute-force schedules ``slow``.

    They still run by default (the whole suite is the gate); ``-m "not slow"``
    leaves them out for a quick round while working.
    """
    for item in items:
        function = getattr(item, "function", None)
        try:
            source = inspect.getsource(function) if function is not None else ""
        except (OSError, TypeError):
            source = ""
        if any(word in item.name for word in _SLOW_NAMES) or any(
            word in source for word in _SLOW_SOURCE
        ):
            item.add_marker(pytest.mark.slow)
