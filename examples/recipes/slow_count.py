"""Recipe: loop a certain number of times, then run ``after_loop``.

A module-level loop with ``count=5``: the body sees ``current_loop`` go
0, 1, 2, 3, 4, and ``after_loop`` prints ``done!`` once the fifth iteration
has finished. ``await slow_count.start()`` waits for all of it (``start()``
returns the run's ``asyncio.Task``).

The docs use ``seconds=5.0``; 0.2 s keeps the script short (about 0.8 s:
the first iteration runs at once, the last one 4 intervals later).
"""

from __future__ import annotations

import asyncio

from supervised_loops import loop

#: Seconds between iterations (5.0 in the discord.ext.tasks docs).
INTERVAL = 0.2


@loop(seconds=INTERVAL, count=5)
async def slow_count() -> None:
    print(slow_count.current_loop)


@slow_count.after_loop
async def after_slow_count() -> None:
    print("done!")


async def main() -> None:
    """Run the five iterations and the after_loop hook."""
    await slow_count.start()


if __name__ == "__main__":
    asyncio.run(main())
