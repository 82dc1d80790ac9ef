"""The public face: everything is importable from the package, and says so."""

from __future__ import annotations

import inspect
import subprocess
import sys

import supervised_loops


def test_every_public_name_is_exported_and_reports_the_package_as_its_module() -> None:
    for name in supervised_loops.__all__:
        value = getattr(supervised_loops, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert value.__module__ == "supervised_loops", name


def test_all_is_sorted_and_has_no_duplicates() -> None:
    names = supervised_loops.__all__
    assert len(set(names)) == len(names)
    assert names == sorted(names, key=lambda n: (not n.isupper(), n))


def test_the_core_never_imports_aiostream() -> None:
    # aiostream is GPL-3.0-or-later: only supervised_loops.streams may import it.
    code = (
        "import sys, supervised_loops, supervised_loops.testing, supervised_loops.service.cli;"
        "assert 'aiostream' not in sys.modules, sorted(m for m in sys.modules if 'aio' in m)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_spec_entry_points_are_where_the_spec_puts_them() -> None:
    from supervised_loops.messages import (  # noqa: F401
        Cancel,
        ChangeInterval,
        GetStatus,
        Pause,
        Restart,
        Resume,
        RunNow,
        Stop,
    )

    assert callable(supervised_loops.run)
    assert callable(supervised_loops.loop)
    assert callable(supervised_loops.child)
