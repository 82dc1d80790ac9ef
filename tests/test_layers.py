"""The package's layers, checked mechanically: lower layers never import higher ones.

Each module's imports are read with ``ast`` (imports made only for type
checking, under ``if TYPE_CHECKING:``, are exempt: they do not run). The
layers, lowest first, are those of docs/architecture.md.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

import supervised_loops

PACKAGE = pathlib.Path(supervised_loops.__file__).parent

#: The pure modules at the top level: no asyncio machinery of ours, no actor.
PURE = {
    "_cron",
    "_interval",
    "_retry_after",
    "_validate",
    "backoff",
    "clock",
    "errors",
    "events",
    "instrument",
    "messages",
    "schedule",
}

#: Layer of each part of the package (a top-level module or a subpackage).
RANK = {
    **dict.fromkeys(PURE, 0),
    "core": 1,
    "leases": 1,  # pure lease logic and its backends; loops and supervision gate on it
    "loops": 2,
    "workers": 2,
    "supervision": 3,
    "service": 4,
    "streams": 4,
    "testing": 4,
    "telemetry": 4,
    "render": 5,
    "pytest_plugin": 5,
    "__init__": 6,
    "__main__": 6,
}


def _part(module: str) -> str:
    """``supervised_loops.loops.face`` -> ``loops``; ``supervised_loops`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _modules() -> list[tuple[str, pathlib.Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).with_suffix("")
        parts = [p for p in relative.parts if p != "__init__"]
        found.append((".".join(["supervised_loops", *parts]), path))
    return found


def _runtime_imports(module: str, path: pathlib.Path) -> list[str]:
    """The supervised_loops modules ``module`` imports when it runs."""
    tree = ast.parse(path.read_text())
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for inner in node.body:
                skipped.update(id(n) for n in ast.walk(inner))
    imported = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if node.module is None or target in {"supervised_loops"}:
                imported.extend(f"{target}.{alias.name}" for alias in node.names)
            else:
                imported.append(target)
        elif isinstance(node, ast.Import):
            imported.extend(alias.name for alias in node.names)
    return [name for name in imported if name.split(".")[0] == "supervised_loops"]


MODULES = _modules()


def test_every_part_of_the_package_has_a_layer() -> None:
    parts = {_part(module) for module, _ in MODULES}
    assert parts <= set(RANK), parts - set(RANK)


@pytest.mark.parametrize(("module", "path"), MODULES, ids=[m for m, _ in MODULES])
def test_a_module_imports_nothing_from_a_higher_layer(module: str, path: pathlib.Path) -> None:
    mine = RANK[_part(module)]
    higher = [
        name
        for name in _runtime_imports(module, path)
        if RANK.get(_part(name), 0) > mine
        or (mine == 2 and _part(name) != _part(module) and RANK.get(_part(name)) == 2)
    ]
    assert higher == [], f"{module} imports from a higher (or sibling) layer: {higher}"


def test_the_actor_mailbox_knows_nothing_of_runs_or_supervisors() -> None:
    path = PACKAGE / "core" / "actor.py"
    imported = _runtime_imports("supervised_loops.core.actor", path)
    assert [name for name in imported if _part(name) != "core" and _part(name) not in PURE] == []
    assert "supervised_loops.core.runnable" not in imported
    assert "supervised_loops.core.parent" not in imported


def test_the_checker_sees_a_violation_and_exempts_type_checking_imports(
    tmp_path: pathlib.Path,
) -> None:
    source = tmp_path / "fake.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "from ..supervision.face import Supervisor\n"
        "from . import exit\n"
        "if TYPE_CHECKING:\n"
        "    from ..loops.face import Loop\n"
    )
    imported = _runtime_imports("supervised_loops.core.fake", source)
    assert imported == ["supervised_loops.supervision.face", "supervised_loops.core.exit"]
    higher = [name for name in imported if RANK[_part(name)] > RANK["core"]]
    assert higher == ["supervised_loops.supervision.face"]


@pytest.mark.parametrize(("module", "path"), MODULES, ids=[m for m, _ in MODULES])
def test_every_module_is_small_and_says_what_it_holds(module: str, path: pathlib.Path) -> None:
    text = path.read_text()
    assert len(text.splitlines()) <= 500, f"{module} has more than 500 lines"
    docstring = ast.get_docstring(ast.parse(text))
    assert docstring, f"{module} has no docstring"
