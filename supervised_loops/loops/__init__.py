"""Loops: periodic work as an actor (the discord.ext.tasks-compatible face and its parts).

`loops.face` is the public face; see its docstring for the parts.

May import: ``core`` and the pure top-level modules; never ``workers``,
``supervision`` or ``service``.
"""
