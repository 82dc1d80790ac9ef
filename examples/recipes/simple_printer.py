"""Recipe: a simple background task in a cog-like class.

The first recipe of the discord.ext.tasks docs, with only the import changed:
the class starts its loop when it is created and cancels it when it is
unloaded. ``self.printer`` is a Loop of this instance alone (another ``MyCog``
gets its own), and the body receives ``self``.

The docs use ``seconds=5.0``; half a second keeps the script short. Run it
with ``python examples/recipes/simple_printer.py``: it prints 0, 1, 2 (one
number every 0.5 s), then unloads the cog.
"""

from __future__ import annotations

import asyncio

from supervised_loops import loop

#: Seconds between iterations (5.0 in the discord.ext.tasks docs).
INTERVAL = 0.5


class MyCog:
    """Prints an increasing index every ``INTERVAL`` seconds while loaded."""

    def __init__(self) -> None:
        self.index = 0
        # start() needs a running event loop: create the cog inside one.
        self.printer.start()

    def cog_unload(self) -> None:
        """Cancel the loop (it ends at once, even in the middle of a sleep)."""
        self.printer.cancel()

    @loop(seconds=INTERVAL)
    async def printer(self) -> None:
        print(self.index)
        self.index += 1


async def main() -> MyCog:
    """Load the cog, let it print three times, unload it; return the cog."""
    cog = MyCog()
    await asyncio.sleep(2.4 * INTERVAL)  # iterations at 0, 0.5 and 1.0 s
    cog.cog_unload()
    task = cog.printer.get_task()
    assert task is not None
    await asyncio.wait({task})  # until the cancelled run has ended
    print(f"unloaded after {cog.index} iterations")
    return cog


if __name__ == "__main__":
    asyncio.run(main())
