"""A Loop is generic over its body, as in discord.ext.tasks; per-instance copies keep its setup.

The typing checks run mypy on a small user module (a subprocess: marked slow).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from supervised_loops import Loop, loop
from supervised_loops.loops.binding import BINDING, CONFIGURATION
from supervised_loops.loops.iteration import LoopIteration


def test_the_configuration_list_is_every_field_of_a_loop_but_its_binding() -> None:
    assert set(CONFIGURATION) | set(BINDING) == set(LoopIteration.__slots__)
    assert not set(CONFIGURATION) & set(BINDING)


def test_a_per_instance_copy_takes_every_configuration_field_and_its_own_binding() -> None:
    class Cog:
        @loop(hours=1, count=3, missed="skip", overlap=2, wait_first=True)
        async def poll(self) -> None:
            pass

        @poll.before_loop
        async def warm_up(self) -> None:
            pass

    Cog.poll.add_exception_type(KeyError)
    cog = Cog()
    bound = cog.poll
    for field in CONFIGURATION:
        assert getattr(bound, field) is getattr(Cog.poll, field), field
    assert bound._instance is cog
    assert Cog.poll._instance is None
    assert cog.poll is bound  # cached


def test_loop_is_subscriptable_and_subclassable_like_discord_ext_tasks() -> None:
    class MyLoop(Loop[Any]):
        pass

    async def body() -> None:
        pass

    assert isinstance(MyLoop(body, schedule=loop(seconds=1)(body).schedule), Loop)
    assert Loop[Any] is not None


USER_MODULE = """
from __future__ import annotations

from typing import Any, Callable, Coroutine, TypeVar

from supervised_loops import Loop, loop

LF = TypeVar("LF", bound=Callable[..., Coroutine[Any, Any, Any]])


class MyLoop(Loop[LF]):
    pass


@loop(seconds=1)
async def tick(a: int, b: str = "x") -> None: ...


class Cog:
    @loop(seconds=1)
    async def poll(self, n: int) -> None: ...


async def main() -> None:
    tick.start(1, "y")
    tick.start(1)
    cog = Cog()
    cog.poll.start(3)
    any_loop: Loop[Any] = tick
    any_loop.start("anything")
    await tick(1)
    tick.start("wrong")  # error: str for int
    cog.poll.start()  # error: n missing
    cog.poll.start(cog, 3)  # error: self is bound
"""


def test_start_is_typed_from_the_bodys_parameters(tmp_path: Path) -> None:
    module = tmp_path / "user_code.py"
    module.write_text(textwrap.dedent(USER_MODULE))
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(module)],
        capture_output=True,
        text=True,
        check=False,
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    lines = sorted({int(line.split(":")[1]) for line in errors})
    source = USER_MODULE.splitlines()
    expected = [number for number, text in enumerate(source, start=1) if "# error" in text]
    assert lines == expected, result.stdout
