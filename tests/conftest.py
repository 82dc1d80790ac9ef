"""Shared fixtures.

Long timings run in virtual time: ``@pytest.mark.virtual_time`` and the
``virtual_clock`` fixture of the library's pytest plugin (newer tests), or
the ``supervised_loops.testing.virtual_time`` decorator (older ones); the
few real-time tests say so in their names.
"""

from __future__ import annotations

import pytest

from supervised_loops import dead_letters


@pytest.fixture(autouse=True)
def _fresh_dead_letters() -> None:
    """Each test counts its own dead letters."""
    dead_letters.clear()
