"""Bounds on the control socket's connections: idle timeout and connection cap."""

from __future__ import annotations

from typing import Any

import attrs

from .. import _validate

__all__ = ["DEFAULT_IDLE_TIMEOUT", "DEFAULT_MAX_CONNECTIONS", "ControlLimits"]

#: Seconds a connection may stay without sending a complete request (or
#: without reading its reply) before it is closed.
DEFAULT_IDLE_TIMEOUT = 30.0

#: Connections open at once.
DEFAULT_MAX_CONNECTIONS = 64


def _timeout(value: Any) -> float:
    return _validate.seconds("idle_timeout", value, allow_zero=False)


def _cap(value: Any) -> int:
    return _validate.positive_int("max_connections", value)


@attrs.frozen
class ControlLimits:
    """Bounds on the control socket's connections.

    Args:
        idle_timeout: seconds a connection may wait without sending a
            complete request, or without reading its reply, before it is
            closed; > 0.
        max_connections: connections open at once; > 0. At the cap the
            connection idle the longest is closed to admit a new one.

    Raises:
        TypeError, ValueError: a bound of the wrong type or out of range.
    """

    idle_timeout: float = attrs.field(default=DEFAULT_IDLE_TIMEOUT, converter=_timeout)
    max_connections: int = attrs.field(default=DEFAULT_MAX_CONNECTIONS, converter=_cap)
