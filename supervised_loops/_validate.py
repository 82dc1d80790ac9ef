"""Argument checks shared by every layer.

Every message has one shape, so users learn it once and tests can assert it
exactly: ``'<name>' must be <rule> (got <value>)``. The checks raise at the
call that passed the bad value; nothing is deferred to a background task.
"""

from __future__ import annotations

import math
from typing import Any


def seconds(name: str, value: Any, *, allow_zero: bool = True) -> float:
    """Return ``value`` as a float number of seconds, or raise.

    Raises:
        TypeError: ``value`` is not a real number (``bool`` is refused too).
        ValueError: ``value`` is NaN, infinite, negative, or zero when
            ``allow_zero`` is false.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name!r} must be a number of seconds (got {value!r})")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{name!r} must be finite (got {value!r})")
    if number < 0 or (number == 0 and not allow_zero):
        rule = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name!r} must be {rule} (got {value!r})")
    return number


def positive_int(name: str, value: Any) -> int:
    """Return ``value`` if it is an ``int`` greater than zero, else raise.

    Raises:
        TypeError: ``value`` is not an ``int`` (``bool`` is refused too).
        ValueError: ``value`` is zero or negative.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name!r} must be an int (got {value!r})")
    if value <= 0:
        raise ValueError(f"{name!r} must be > 0 (got {value!r})")
    return value


def exception_class(name: str, value: Any) -> type[BaseException]:
    """Return ``value`` if it is a subclass of ``BaseException``, else raise.

    Raises:
        TypeError: ``value`` is not a class, or not an exception class.
    """
    if not isinstance(value, type) or not issubclass(value, BaseException):
        raise TypeError(f"{name!r} must be an exception class (got {value!r})")
    return value
