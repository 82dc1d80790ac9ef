"""Per-instance Loops: a loop defined in a class body gives each instance its own copy.

``@loop`` on a method makes one `Loop` on the class; ``instance.printer`` is
a copy bound to that instance, made at the first access and cached (in the
instance's ``__dict__``, or here for a class with ``__slots__``). The copy
takes over the *configuration* listed in `CONFIGURATION`, as it is at that
moment (hooks, exception types, retry rules, schedule), and starts with its
own run state. The list is explicit: a new configuration field of a Loop is
added here, and the Loop's slots are built from it, so the two cannot drift.

May import: ``core`` and the standard library.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any, TypeVar

from ..core.actor import Actor

if TYPE_CHECKING:
    from .face import Loop

__all__ = ["BINDING", "CONFIGURATION", "bound_for"]

#: What a Loop is configured with, copied into each per-instance Loop.
CONFIGURATION = (
    "_after",
    "_attr_name",
    "_backoff",
    "_before",
    "_coro",
    "_count",
    "_error",
    "_exception_types",
    "_max_consecutive_failures",
    "_missed",
    "_overlap",
    "_reconnect",
    "_retry_rules",
    "_schedule",
    "_wait_first",
)

#: What each copy has of its own, never copied: the binding itself (the
#: instance a copy is bound to, None on the class's Loop, and the class's
#: Loop's cache of copies for instances without a ``__dict__``), and the
#: ring of recent iterations (``loops.recent``).
BINDING = ("_instance", "_instances", "_recent")

L = TypeVar("L", bound="Loop[Any]")


def bound_for(loop: L, obj: Any) -> L:
    """The copy of ``loop`` bound to ``obj`` (made at the first access, then cached)."""
    name = loop._attr_name or loop._coro.__name__
    cache = getattr(obj, "__dict__", None)
    if cache is not None:
        bound = cache.get(name)
        if bound is None:
            bound = cache[name] = _copy(loop, obj)
        return bound  # type: ignore[no-any-return]
    # A class with __slots__ has no __dict__ to cache the copy in. Keep it on
    # the class's Loop instead: weakly when the instance allows weak
    # references, else strongly by identity (the instance then lives as long
    # as the Loop).
    if loop._instances is None:
        loop._instances = {}
    instances = loop._instances
    try:
        table = instances.setdefault("weak", weakref.WeakKeyDictionary())
        bound = table.get(obj)
        if bound is None:
            bound = table[obj] = _copy(loop, obj)
        return bound  # type: ignore[no-any-return]
    except TypeError:  # not weak-referenceable
        table = instances.setdefault("strong", {})
        entry = table.get(id(obj))
        if entry is None or entry[0] is not obj:
            entry = table[id(obj)] = (obj, _copy(loop, obj))
        return entry[1]  # type: ignore[no-any-return]


def _copy(loop: L, obj: Any) -> L:
    bound = type(loop).__new__(type(loop))
    Actor.__init__(bound, loop._name, mailbox_size=loop._mailbox_size)
    bound._reset_runs()
    for field in CONFIGURATION:
        setattr(bound, field, getattr(loop, field))
    bound._instance = obj
    bound._instances = None
    bound._recent = None
    return bound
