"""``ask`` is typed by its message: mypy sees a status, an Ack, or Any.

The snippet below is checked with mypy (strict), as a user's code would be;
``assert_type`` fails the check when the inferred type differs.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from mypy import api as mypy_api

SNIPPET = """
from typing import Any, assert_type

from supervised_loops import Ack, ActorStatus, GetStatus, RunNow, Stop, Supervisor, loop


@loop(seconds=10)
async def poll() -> None:
    pass


async def main(tree: Supervisor) -> None:
    assert_type(await poll.ask(GetStatus()), ActorStatus)
    assert_type(await tree.ask(GetStatus(), timeout=1.0), ActorStatus)
    assert_type(await poll.ask(RunNow()), Ack)
    assert_type(await tree.ask(Stop()), Ack)
    assert_type(await poll.ask(("a user message", 1)), Any)
    status = await poll.ask(GetStatus())
    print(status.current_loop, status.next_iteration)
"""


def test_ask_is_typed_by_its_message(tmp_path: Path) -> None:
    source = tmp_path / "user_code.py"
    source.write_text(textwrap.dedent(SNIPPET))
    out, err, status = mypy_api.run(
        ["--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(source)]
    )
    assert status == 0, out + err
