"""The samples of ``docs/supervision.md`` and ``docs/subclassing.md`` run and print what they say.

The pages follow the documentation's rules: a fenced ``python`` block is
executed (the blocks of a page share one namespace and one event loop in
virtual time starting at 2026-01-01 00:00 UTC, and may ``await`` at top
level, so no sample calls ``asyncio.run``); an ``output`` block right
after it is the exact text it prints;
``py`` blocks are shown, not run.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import io
import re
from pathlib import Path
from typing import Any

import pytest

from supervised_loops.testing import VirtualClock

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = ["supervision.md", "subclassing.md"]
FENCE = re.compile(r"^```(?P<lang>[\w-]*)[^\n]*\n(?P<code>.*?)^```$", re.MULTILINE | re.DOTALL)


def cells(text: str) -> list[tuple[str, str | None]]:
    """The page's python blocks, each with the output block that follows it (or None)."""
    found = [(m["lang"], m["code"]) for m in FENCE.finditer(text)]
    result: list[tuple[str, str | None]] = []
    for index, (lang, code) in enumerate(found):
        if lang != "python":
            continue
        following = found[index + 1] if index + 1 < len(found) else None
        expected = following[1] if following is not None and following[0] == "output" else None
        result.append((code, expected))
    return result


async def run_cell(code: str, namespace: dict[str, Any]) -> str:
    compiled = compile(code, "<doc>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        result = eval(compiled, namespace)  # the page's own code
        if asyncio.iscoroutine(result):
            await result
    return printed.getvalue()


@pytest.mark.parametrize("page", PAGES)
def test_the_samples_of_the_page_run_and_print_what_it_says(page: str) -> None:
    text = (DOCS / page).read_text(encoding="utf-8")
    found = cells(text)
    assert found, f"{page} has no python sample"
    clock = VirtualClock()
    event_loop = clock.new_event_loop()
    namespace: dict[str, Any] = {"__name__": f"docs_{page[:-3]}"}

    async def run_all() -> None:
        for number, (code, expected) in enumerate(found, 1):
            printed = await run_cell(code, namespace)
            if expected is not None:
                assert printed == expected, f"{page}, sample {number}"
        assert asyncio.all_tasks() == {asyncio.current_task()}, f"{page} left tasks running"

    try:
        event_loop.run_until_complete(run_all())
    finally:
        event_loop.close()
