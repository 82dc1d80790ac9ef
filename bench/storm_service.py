"""The service the signal storm stops: a batcher that must lose nothing on a clean exit.

A poller numbers a reading every 50 ms, journals the number at once (the
"source" side), and keeps it in a buffer; a writer appends the buffer to
the store every 0.5 s, and once more in its ``after_loop``. The writer
starts first and so stops last: after a clean shutdown every number in the
journal is in the store. ``$STORM_DIR`` is where both files go.
"""

from __future__ import annotations

import os
from pathlib import Path

from supervised_loops import Supervisor, child, loop


def make_tree() -> Supervisor:
    directory = Path(os.environ["STORM_DIR"])
    journal = directory / "polled"
    store = directory / "stored"
    buffer: list[int] = []
    polled = [0]

    def flush() -> None:
        if buffer:
            with store.open("a") as out:
                out.write("".join(f"{n}\n" for n in buffer))
            buffer.clear()

    @loop(seconds=0.05)
    async def poller() -> None:
        polled[0] += 1
        with journal.open("a") as out:
            out.write(f"{polled[0]}\n")
        buffer.append(polled[0])

    @loop(seconds=0.5)
    async def writer() -> None:
        flush()

    @writer.after_loop
    async def _flush_on_exit() -> None:
        flush()

    return Supervisor(child(writer), child(poller), name="storm")
