"""What delay an exception asks for: its ``retry_after``, read safely.

Pure and a leaf: imports nothing from the package. `supervised_loops.backoff`
re-exports `retry_after_of` (its public home) and uses it in ``retry_delay``.
"""

from __future__ import annotations

import datetime
import math
import numbers

__all__ = ["retry_after_of"]


def retry_after_of(exc: BaseException) -> float | None:
    """Return the delay, in seconds, that an exception asks for, if any.

    Servers answer HTTP 429 (and some 503s) with a ``Retry-After``; HTTP
    clients (discord.py's ``RateLimited``, for one) expose it as a
    ``retry_after`` attribute. Waiting less than that only earns another
    refusal, so a rule honouring it waits at least this long.

    Args:
        exc: The exception the loop's body raised.

    Returns:
        ``exc.retry_after`` as a float number of seconds when it is a real
        number (``int``, ``float``, or any ``numbers.Real`` but ``bool``) or
        a ``datetime.timedelta``. ``None`` when the attribute is absent or
        ``None``, a ``bool``, another type (strings such as an unparsed header
        are not parsed: that is the HTTP client's job), negative, NaN or
        infinite: a nonsensical value is ignored rather than trusted, and the
        ordinary backoff applies. Zero is returned as ``0.0``.

    Raises:
        Exception: Whatever looking up the attribute raises, other than
            ``AttributeError``, propagates.
    """
    value = getattr(exc, "retry_after", None)
    if isinstance(value, datetime.timedelta):
        number = value.total_seconds()
    elif isinstance(value, numbers.Real) and not isinstance(value, bool):
        try:
            number = float(value)
        except (OverflowError, ValueError):
            # An int too large for a float: as good as infinite.
            return None
    else:
        return None
    if not math.isfinite(number) or number < 0:
        return None
    return number
