"""Loading the ``TARGET`` of ``run`` and ``tree``, and saying why it would not load."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from pathlib import Path
from typing import Any

from ..core.actor import Actor

__all__ = ["describe_load_error", "load_target"]

# Frames of these files are the loading machinery, not the user's code.
_OURS = str(Path(__file__).resolve().parent.parent) + "/"
_IMPORTLIB = str(Path(importlib.__file__).resolve().parent) + "/"


def load_target(target: str) -> Actor:
    """Import ``module:attribute`` or ``file.py:attribute`` and return the actor.

    Whatever the module raises while it is imported, or the factory while it
    is called, propagates as it is (`describe_load_error` words it).

    Raises:
        ValueError: ``target`` has no ``:attribute`` part.
        ImportError, AttributeError: the module or attribute does not exist.
        TypeError: the attribute is not an actor nor a factory of one.
    """
    module_part, sep, attribute = target.rpartition(":")
    if not sep or not module_part or not attribute:
        raise ValueError(
            f"TARGET must be 'module:attribute' or 'file.py:attribute' (got {target!r})"
        )
    if module_part.endswith(".py") or "/" in module_part:
        path = Path(module_part).resolve()
        if not path.is_file():
            raise ImportError(f"no such file: {module_part!r}")
        name = f"_supervised_loops_target_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {module_part!r}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        _import_root(path.parent)  # the file's sibling modules import as usual
        spec.loader.exec_module(module)
    else:
        _import_root(Path.cwd())  # as ``python -m`` does
        module = importlib.import_module(module_part)
    value: Any = module
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise AttributeError(f"{module_part!r} has no attribute {attribute!r}") from None
    if not isinstance(value, Actor) and callable(value):
        value = value()
    if not isinstance(value, Actor):
        raise TypeError(f"{target!r} is not an actor nor a function returning one (got {value!r})")
    return value


def _import_root(directory: Path) -> None:
    entry = str(directory)
    if entry not in sys.path:
        sys.path.insert(0, entry)


def _is_users(frame: traceback.FrameSummary) -> bool:
    name = frame.filename
    return not (name.startswith(("<frozen importlib", _OURS, _IMPORTLIB)))


def _users_only(summary: traceback.TracebackException) -> bool:
    """Drop the loader's frames from ``summary`` and its chain; True if any frame is left."""
    kept = [frame for frame in summary.stack if _is_users(frame)]
    summary.stack = traceback.StackSummary.from_list(kept)
    found = bool(kept)
    for linked in (summary.__cause__, summary.__context__):
        if linked is not None:
            found = _users_only(linked) or found
    return found


def describe_load_error(error: BaseException) -> str:
    """Why a target would not load, for the terminal.

    A mistake found by the loader itself (no such file or attribute, not an
    actor) is its message, on one line. An error raised by the user's code
    (while the module is imported or the factory called), and a syntax
    error, is the traceback of the user's frames only, with its exception:
    the loader's and importlib's frames are left out.
    """
    summary = traceback.TracebackException.from_exception(error)
    if _users_only(summary) or isinstance(error, SyntaxError):
        return "\n" + "".join(summary.format()).rstrip("\n")
    return " " + " ".join(str(error).split()) if str(error) else f" {type(error).__name__}"
