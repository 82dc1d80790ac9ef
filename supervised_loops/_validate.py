"""Argument checks shared by every layer (a leaf: imports nothing of the package).

Every public constructor and function checks its arguments here, at the call
that passed them, so a mistake fails where it is written and never later in a
background task. Each rule has one wording, and every message has one shape,
``'<name>' must be <rule> (got <value>)``, where ``<name>`` is the parameter
as the user wrote it (``'seconds'``, ``'retry[1]'``), never an internal field.
A wrong type raises ``TypeError``; a value of the right type that breaks the
rule raises ``ValueError``. See docs/loops.md, "Validation".

The rules and their wording (``bool`` is never taken for a number):

* a real number: ``TypeError``, ``must be a number``;
* finite (not NaN, not infinite, not too large for a float): ``ValueError``,
  ``must be finite``, so a huge int never surfaces as ``OverflowError``;
* not negative, positive: ``ValueError``, ``must be >= 0``, ``must be > 0``;
* a duration of at most 1000 years: ``ValueError``,
  ``must be <= 31536000000 (1000 years)``;
* an int: ``TypeError``, ``must be an int``;
* a bool (not merely truthy): ``TypeError``, ``must be a bool``;
* a str: ``TypeError``, ``must be a str``;
* an actor name: ``ValueError``, ``must be non-empty and without '/'``;
* one of a set of strings: ``must be one of 'a', 'b'`` (``TypeError`` for a
  non-string, ``ValueError`` for another string);
* an instance of a class: ``TypeError``, ``must be a <Class>`` (``or None``).
"""

from __future__ import annotations

import inspect
import math
import numbers
import sys
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, NoReturn, TypeVar, cast

_T = TypeVar("_T")

_YEAR: Final = 365 * 86_400.0

#: The longest duration, in seconds, that a duration argument may name (1000
#: years of 365 days): anything longer is refused rather than left to overflow
#: a ``datetime`` when it is scheduled.
MAX_SECONDS: Final = 1000 * _YEAR

#: Longest ``<value>`` shown in a message by default; longer reprs are cut in
#: the middle. A caller whose message goes somewhere narrower (a control reply)
#: passes its own ``width``.
_MAX_SHOWN = 200


def show(value: Any, width: int = _MAX_SHOWN) -> str:
    """Return the ``<value>`` part of a message: the repr, at most ``width`` characters.

    A huge int (``10**400``) or a long list would otherwise flood the message,
    and a repr that raises (an int past the interpreter's digit limit, a list
    nested ten thousand deep) must not hide the error being reported. A repr
    longer than ``width`` keeps its start and its end, and says how long it
    was: ``100000...000 (4001 characters)``.
    """
    try:
        text = repr(value)
    except ValueError:  # an int past the interpreter's digit limit
        text = f"<int of more than {_digit_limit()} digits>"
    except Exception:  # RecursionError included: never hide the error reported
        text = object.__repr__(value)
    if len(text) <= width:
        return text
    suffix = f" ({len(text)} characters)"
    room = width - len(suffix) - 3
    if room < 2:  # too narrow to say the length as well
        return text[: max(width - 3, 0)] + "..."
    head = room - room // 2
    return f"{text[:head]}...{text[len(text) - room // 2 :]}{suffix}"


def _digit_limit() -> int:
    return sys.get_int_max_str_digits() or 4300


def message(name: str, rule: str, value: Any, *, width: int = _MAX_SHOWN) -> str:
    """Return ``'<name>' must be <rule> (got <value>)``, ``<value>`` as `show` gives it."""
    return f"{name!r} must be {rule} (got {show(value, width)})"


def type_error(name: str, rule: str, value: Any, *, width: int = _MAX_SHOWN) -> NoReturn:
    """Raise ``TypeError`` with the shared message shape."""
    raise TypeError(message(name, rule, value, width=width))


def value_error(name: str, rule: str, value: Any, *, width: int = _MAX_SHOWN) -> NoReturn:
    """Raise ``ValueError`` with the shared message shape."""
    raise ValueError(message(name, rule, value, width=width))


# -- numbers ----------------------------------------------------------------------


def number(name: str, value: Any, *, width: int = _MAX_SHOWN) -> float:
    """Return ``value`` as a finite float; it may be negative.

    ``width`` bounds the value shown in a message (see `show`).

    Raises:
        TypeError: ``value`` is not a real number (``bool`` is refused too).
        ValueError: ``value`` is NaN or infinite, or an int too large for a
            float (which would otherwise raise ``OverflowError``).
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        type_error(name, "a number", value, width=width)
    try:
        result = float(value)
    except OverflowError:
        result = math.inf
    if not math.isfinite(result):
        value_error(name, "finite", value, width=width)
    return result


def seconds(
    name: str,
    value: Any,
    *,
    allow_zero: bool = True,
    limit: float | None = MAX_SECONDS,
    unit: float = 1.0,
    width: int = _MAX_SHOWN,
) -> float:
    """Return ``value`` as a finite, non-negative float number of ``unit`` seconds.

    Durations are bounded by ``limit`` seconds (`MAX_SECONDS`, 1000 years,
    unless told otherwise): a longer one is no plan but a typo or a stand-in
    for "never", and added to a date it would leave the range of ``datetime``
    and fail later, far from the call. ``unit`` is what one of ``value``
    counts (60 for ``'minutes'``): the limit is checked, and worded, in that
    unit. ``width`` bounds the value shown in a message (see `show`).

    Raises:
        TypeError: ``value`` is not a real number (``bool`` is refused too).
        ValueError: ``value`` is NaN or infinite, negative, zero when
            ``allow_zero`` is false, or above ``limit`` (with no limit: too
            large for a float).
    """
    kind = type(value)
    if (kind is not float and kind is not int) and (
        isinstance(value, bool) or not isinstance(value, numbers.Real)
    ):  # (the exact types first: the ABC check costs a microsecond, on every ask)
        type_error(name, "a number", value, width=width)
    # Comparisons, not float(): an int of any size compares exactly.
    amount = cast(float, value)
    if amount != amount or amount == math.inf or amount == -math.inf:
        value_error(name, "finite", value, width=width)
    if amount < 0 or (amount == 0 and not allow_zero):
        value_error(name, ">= 0" if allow_zero else "> 0", value, width=width)
    if limit is not None and amount > limit / unit:
        rule = f"<= {limit / unit:.0f} ({limit / _YEAR:.0f} years)"
        value_error(name, rule, value, width=width)
    return number(name, value, width=width)


def optional_seconds(name: str, value: Any, *, allow_zero: bool = True) -> float | None:
    """`seconds`, with ``None`` passed through (meaning "no limit")."""
    return None if value is None else seconds(name, value, allow_zero=allow_zero)


def integer(name: str, value: Any, *, minimum: int) -> int:
    """Return ``value`` if it is an ``int`` of at least ``minimum``.

    Raises:
        TypeError: ``value`` is not an ``int`` (``bool`` is refused too).
        ValueError: ``value`` is below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        type_error(name, "an int", value)
    if value < minimum:
        rule = "> 0" if minimum == 1 else f">= {minimum}"
        value_error(name, rule, value)
    return value


def positive_int(name: str, value: Any) -> int:
    """Return ``value`` if it is an ``int`` greater than zero, else raise (see `integer`)."""
    return integer(name, value, minimum=1)


def non_negative_int(name: str, value: Any) -> int:
    """Return ``value`` if it is an ``int`` of zero or more, else raise (see `integer`)."""
    return integer(name, value, minimum=0)


# -- other types ------------------------------------------------------------------


def boolean(name: str, value: Any) -> bool:
    """Return ``value`` if it is a ``bool`` (not merely truthy), else raise ``TypeError``."""
    if not isinstance(value, bool):
        type_error(name, "a bool", value)
    return value


def text(name: str, value: Any) -> str:
    """Return ``value`` if it is a ``str``, else raise ``TypeError``."""
    if not isinstance(value, str):
        type_error(name, "a str", value)
    return value


def actor_name(name: str, value: Any) -> str:
    """Return ``value`` if it can name an actor: a non-empty str without ``'/'``.

    ``'/'`` separates the parts of a path in the tree, so a name holding one
    could not be looked up.

    Raises:
        TypeError: ``value`` is not a str.
        ValueError: ``value`` is empty or contains ``'/'``.
    """
    result = text(name, value)
    if not result or "/" in result:
        value_error(name, "non-empty and without '/'", value)
    return result


def choice(name: str, value: Any, accepted: Sequence[str]) -> str:
    """Return ``value`` if it is one of the ``accepted`` strings.

    Raises:
        TypeError: ``value`` is not a str.
        ValueError: ``value`` is another string.
    """
    rule = "one of " + ", ".join(repr(option) for option in accepted)
    if not isinstance(value, str):
        type_error(name, rule, value)
    if value not in accepted:
        value_error(name, rule, value)
    result: str = value
    return result


def instance(name: str, value: Any, kind: type[_T], rule: str) -> _T:
    """Return ``value`` if it is an instance of ``kind``, else raise ``TypeError``.

    ``rule`` is how the message names the type (``"an ExponentialBackoff"``).
    """
    if not isinstance(value, kind):
        type_error(name, rule, value)
    return value


def optional_instance(name: str, value: Any, kind: type[_T], rule: str) -> _T | None:
    """`instance`, with ``None`` accepted; the message says ``<rule> or None``."""
    if value is not None and not isinstance(value, kind):
        type_error(name, f"{rule} or None", value)
    return value


def optional_callable(name: str, value: Any) -> Callable[..., Any] | None:
    """Return ``value`` if it is callable or None, else raise ``TypeError``."""
    if value is not None and not callable(value):
        type_error(name, "callable or None", value)
    result: Callable[..., Any] | None = value
    return result


def coroutine_function(name: str, value: Any) -> Callable[..., Any]:
    """Return ``value`` if it is a coroutine function, else raise ``TypeError``."""
    if not inspect.iscoroutinefunction(value):
        type_error(name, "a coroutine function", value)
    result: Callable[..., Any] = value
    return result


def exception_class(name: str, value: Any) -> type[BaseException]:
    """Return ``value`` if it is a subclass of ``BaseException``, else raise.

    Raises:
        TypeError: ``value`` is not a class, or not an exception class.
    """
    if not isinstance(value, type) or not issubclass(value, BaseException):
        type_error(name, "an exception class", value)
    return value


def items(name: str, value: Any, check: Callable[[str, Any], _T]) -> tuple[_T, ...]:
    """Return the items of an iterable as a tuple, each passed through ``check``.

    ``check`` gets ``'<name>[<index>]'`` as its name, so a bad item is named
    by its position (``'retry[1]'``).

    Raises:
        TypeError: ``value`` is not iterable, or is a str/bytes (almost
            always a single value passed where a collection belongs).
        TypeError, ValueError: whatever ``check`` raises for an item.
    """
    if isinstance(value, str | bytes | bytearray) or not isinstance(value, Iterable):
        type_error(name, "an iterable", value)
    return tuple(check(f"{name}[{index}]", item) for index, item in enumerate(value))


# -- call arguments ---------------------------------------------------------------


def arguments(name: str, value: Any) -> tuple[Any, ...]:
    """Return positional arguments as a tuple.

    A str or bytes is a sequence too, but ``args="abc"`` is a mistake for
    ``args=("abc",)``: refused, as is anything that is not a sequence.

    Raises:
        TypeError: ``value`` is not a sequence, or is a str/bytes.
    """
    if isinstance(value, str | bytes | bytearray) or not isinstance(value, Sequence):
        type_error(name, "a sequence of positional arguments", value)
    return tuple(value)


def keyword_arguments(name: str, value: Any) -> Mapping[str, Any]:
    """Return keyword arguments as a read-only copy.

    Raises:
        TypeError: ``value`` is not a mapping, or a key is not a str (it
            could never be passed as ``**kwargs``).
    """
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        type_error(name, "a mapping of keyword arguments with str keys", value)
    return types.MappingProxyType(dict(value))
