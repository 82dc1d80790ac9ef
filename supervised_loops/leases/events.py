"""Lease events, published on the owning actor's event stream."""

from __future__ import annotations

import attrs

from ..events import Event

__all__ = ["LeaseAcquired", "LeaseLost"]


@attrs.frozen
class LeaseAcquired(Event):
    """The actor got its lease and leaves standby.

    Attributes:
        lease: the lease's name.
        holder: this replica's holder id.
        fence: the grant's fencing token.
    """

    lease: str
    holder: str
    fence: int


@attrs.frozen
class LeaseLost(Event):
    """The actor lost its lease and went back to standby (not a failure).

    Attributes:
        lease: the lease's name.
        holder: this replica's holder id.
        fence: the fence of the grant that was lost.
        reason: ``"refused"``, ``"deadline passed"`` or ``"unreachable"``.
    """

    lease: str
    holder: str
    fence: int
    reason: str
