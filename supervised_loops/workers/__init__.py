"""Workers: a plain long-running coroutine as an actor (see `workers.worker`).

May import: ``core`` and the pure top-level modules; never ``loops``,
``supervision`` or ``service``.
"""
