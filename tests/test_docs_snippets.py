"""Every code sample of the documentation runs, and prints what the page says.

The rules a page follows (they are what this module checks):

* A fenced block tagged ``python`` is executed. The blocks of one page share
  one namespace and one event loop running in virtual time (a
  :class:`~supervised_loops.testing.VirtualClock` starting at 2026-01-01 00:00
  UTC), like cells of a notebook: a block may ``await`` at top level, and
  ``asyncio.run(main())`` in a block runs ``main()`` on that loop.
* A block tagged ``output`` that follows a ``python`` block is the exact text
  that block prints.
* A block with a ``title="name"`` (``conftest.py``, ``pyproject.toml``, ...)
  is a file, not a cell: the page's files are written to a fresh directory
  and, if one of them is a ``test_*.py``, pytest runs there in a subprocess
  and must pass.
* Functions named ``test_*`` that a cell defines are called after the cell,
  as pytest would.
* A ``--8<-- "path"`` line (a pymdownx.snippets include) stands for the
  file of the repository it names, as on the built page.
* Blocks tagged ``py`` are shown and not executed (code for discord.py, or
  that runs until a signal); keep them few and say why next to them.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import io
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from supervised_loops.testing import VirtualClock

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

#: The pages whose samples are checked here (the pages of other authors have their own).
PAGES = [
    "index.md",
    "quickstart.md",
    "tutorial.md",
    "recipes.md",
    "migration.md",
    "loops.md",
    "messages.md",
    "events.md",
    "testing.md",
    "observability.md",
    "replicas.md",
]

_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)(?P<attrs>[^\n`]*)$")
_TITLE = re.compile(r'title="(?P<title>[^"]+)"')
# pymdownx.snippets: a line --8<-- "path" includes a file of the repository.
_INCLUDE = re.compile(r'^--8<-- "(?P<path>[^"]+)"$')


@attrs.frozen
class Block:
    lang: str
    title: str | None
    code: str
    line: int


def blocks(text: str) -> Iterator[Block]:
    """The fenced code blocks of a Markdown page, dedented, in order."""
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        match = _FENCE.match(lines[index])
        if match is None:
            index += 1
            continue
        indent = match["indent"]
        title = _TITLE.search(match["attrs"])
        start = index
        body: list[str] = []
        index += 1
        while index < len(lines) and lines[index].strip() != "```":
            body.append(lines[index])
            index += 1
        index += 1
        code = textwrap.dedent("\n".join(line.removeprefix(indent) for line in body))
        code = "\n".join(_expand(line) for line in code.splitlines())
        yield Block(match["lang"], title["title"] if title else None, code + "\n", start + 1)


def _expand(line: str) -> str:
    match = _INCLUDE.match(line.strip())
    if match is None:
        return line
    return (ROOT / match["path"]).read_text(encoding="utf-8").rstrip("\n")


def run_cell(block: Block, namespace: dict[str, Any], event_loop: asyncio.AbstractEventLoop) -> str:
    """Execute one cell in ``namespace`` on ``event_loop``; return what it printed."""
    code = compile(block.code, f"<{block.line}>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    output = io.StringIO()
    before = set(namespace)
    with contextlib.redirect_stdout(output):
        result = eval(code, namespace)
        if asyncio.iscoroutine(result):
            event_loop.run_until_complete(result)
        for name in sorted(set(namespace) - before):
            value = namespace[name]
            if name.startswith("test_") and callable(value):
                outcome = value()
                if asyncio.iscoroutine(outcome):
                    event_loop.run_until_complete(outcome)
    return output.getvalue()


def settle(event_loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what the page left running, and close its loop."""
    pending = asyncio.all_tasks(event_loop)
    for task in pending:
        task.cancel()
    if pending:
        event_loop.run_until_complete(asyncio.wait(pending))
    event_loop.run_until_complete(event_loop.shutdown_asyncgens())
    event_loop.close()


#: Pages outside docs/ whose samples run too (paths relative to docs/).
OTHER_PAGES = ["../README.md"]


@pytest.mark.parametrize("page", [*PAGES, *OTHER_PAGES])
def test_code_samples_run_and_print_what_the_page_says(
    page: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    text = (DOCS / page).read_text(encoding="utf-8")
    clock = VirtualClock()
    event_loop = clock.new_event_loop()
    problems: list[dict[str, Any]] = []
    event_loop.set_exception_handler(lambda _loop, context: problems.append(context))
    monkeypatch.setattr(asyncio, "run", lambda main, **_: event_loop.run_until_complete(main))
    namespace: dict[str, Any] = {"__name__": f"docs_{page[:-3]}"}
    files: dict[str, str] = {}
    printed: str | None = None
    try:
        for block in blocks(text):
            if block.title is not None:
                files[block.title] = block.code
                printed = None
            elif block.lang == "python":
                try:
                    printed = run_cell(block, namespace, event_loop)
                except Exception as error:
                    raise AssertionError(
                        f"{page}:{block.line}: the sample raised {error!r}"
                    ) from error
            elif block.lang == "output":
                assert printed is not None, f"{page}:{block.line}: output block without a cell"
                assert printed.rstrip("\n") == block.code.rstrip("\n"), (
                    f"{page}:{block.line}: the cell printed:\n{printed}"
                )
                printed = None
            else:
                printed = None
    finally:
        settle(event_loop)
    assert problems == [], f"{page}: unhandled errors in the event loop: {problems}"
    if any(Path(name).name.startswith("test_") for name in files):
        for name, code in files.items():
            (tmp_path / name).write_text(code, encoding="utf-8")
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "-W",
                "error",
                "--timeout=30",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, f"{page}: the page's test files failed:\n{result.stdout}"


def test_the_docs_pages_named_here_exist_and_have_samples() -> None:
    for page in [*PAGES, *OTHER_PAGES]:
        found = list(blocks((DOCS / page).read_text(encoding="utf-8")))
        assert any(block.lang == "python" for block in found), f"{page} has no python sample"


def test_unexecuted_samples_are_rare_and_each_is_explained() -> None:
    for page in [*PAGES, *OTHER_PAGES]:
        text = (DOCS / page).read_text(encoding="utf-8")
        lines = text.splitlines()
        for block in blocks(text):
            if block.lang == "py":
                before = "\n".join(lines[max(0, block.line - 4) : block.line - 1])
                assert "not run" in before.lower() or "discord" in before.lower(), (
                    f"{page}:{block.line}: say why this sample is not run"
                )


def test_the_api_page_lists_the_submodules_the_package_docstring_names() -> None:
    import supervised_loops

    def named(text: str) -> list[str]:
        sentence = text[text.index("the submodules users name are") :]
        sentence = sentence[: sentence.index(". ")]
        return re.findall(r"`([\w.]+)`", sentence)

    page = (DOCS / "api.md").read_text(encoding="utf-8")
    assert named(supervised_loops.__doc__ or "") == named(" ".join(page.split()))


def test_the_home_page_names_every_extra_and_counts_them_right() -> None:
    import tomllib

    extras = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    )
    page = (DOCS / "index.md").read_text(encoding="utf-8")
    section = page[page.index("The core depends on") : page.index("## Where next")]
    rows = re.findall(r"^\| `([\w-]+)` \|", section, flags=re.MULTILINE)
    words = {"Four": 4, "Five": 5, "Six": 6, "Seven": 7}
    stated = re.search(r"(\w+) extras add\s+optional features", section)
    assert stated is not None
    assert words[stated.group(1)] == len(rows)
    others = re.search(r"(\w+) more are for working on the project itself", section)
    assert others is not None
    named = set(rows) | set(re.findall(r"`([\w-]+)` \(", section))
    assert words[others.group(1)] == len(named) - len(rows)
    assert named == extras
