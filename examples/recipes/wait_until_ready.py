"""Recipe: wait until the bot is ready before the loop starts.

``before_loop`` runs once per start, before the first iteration, and may
wait as long as it needs: here, until a stand-in ``Bot`` has "connected".
No iteration runs before that, and the interval counts from the first
iteration, not from ``start()``. (In a supervision tree, the next sibling
also waits for this: the loop is *ready* once ``before_loop`` returns.)

Run it with ``python examples/recipes/wait_until_ready.py``: it prints
``waiting...``, the bot connects half a second later, then the loop prints
0 and 1 before the cog is unloaded.
"""

from __future__ import annotations

import asyncio

from supervised_loops import loop

#: Seconds between iterations (5.0 in the discord.ext.tasks docs).
INTERVAL = 0.5
#: Seconds the stand-in bot takes to connect.
CONNECT_DELAY = 0.5


class Bot:
    """A stand-in for ``discord.Client``: becomes ready once connected."""

    def __init__(self) -> None:
        self._ready = asyncio.Event()

    async def connect(self) -> None:
        """Pretend to log in and fetch the initial state, then become ready."""
        await asyncio.sleep(CONNECT_DELAY)
        print("bot ready")
        self._ready.set()

    def is_ready(self) -> bool:
        return self._ready.is_set()

    async def wait_until_ready(self) -> None:
        """Return once the bot is ready (at once if it already is)."""
        await self._ready.wait()


class MyCog:
    """Prints an increasing index every ``INTERVAL`` seconds, once the bot is ready."""

    def __init__(self, bot: Bot) -> None:
        self.index = 0
        self.bot = bot
        self.printer.start()

    def cog_unload(self) -> None:
        self.printer.cancel()

    @loop(seconds=INTERVAL)
    async def printer(self) -> None:
        print(self.index)
        self.index += 1

    @printer.before_loop
    async def before_printer(self) -> None:
        print("waiting...")
        await self.bot.wait_until_ready()


async def main() -> MyCog:
    """Load the cog before the bot is ready; unload it after two iterations."""
    bot = Bot()
    cog = MyCog(bot)  # starts the loop, which waits in before_loop
    await bot.connect()
    await asyncio.sleep(1.4 * INTERVAL)  # iterations right after ready, then +0.5 s
    cog.cog_unload()
    task = cog.printer.get_task()
    assert task is not None
    await asyncio.wait({task})
    print(f"unloaded after {cog.index} iterations")
    return cog


if __name__ == "__main__":
    asyncio.run(main())
