"""A grant: proof, valid until a local deadline, that one holder has a lease."""

from __future__ import annotations

import attrs

from .settings import LeaseSettings

__all__ = ["Grant"]


@attrs.frozen
class Grant:
    """One holder's claim on a named lease, as a backend answered it.

    Attributes:
        name: the lease's name.
        holder: the holder id that asked for it.
        fence: the fencing token. Every new grant of a name has a larger
            fence than every earlier one, across all holders and restarts of
            the holders; a renewal keeps the fence. A store that remembers the
            largest fence it has seen and rejects smaller ones cannot be
            written by a holder that lost the lease without knowing it.
        settings: the timing the grant was asked with.
        sent_at: the event loop's ``time()`` when the request that produced
            this grant was *sent*. The backend may have recorded the grant
            later, never earlier, so deadlines counted from here are
            conservative.
    """

    name: str
    holder: str
    fence: int
    settings: LeaseSettings
    sent_at: float

    #: The local deadline: ``sent_at + renew_deadline`` on the event loop's
    #: clock. Never derived from the server's clock, so clock skew between
    #: hosts does not matter; only the rates of the clocks do, and the margin
    #: between the renew deadline and the ttl absorbs that. (Computed once:
    #: it is read on every iteration of a loop with a lease.)
    valid_until: float = attrs.field(
        init=False,
        default=attrs.Factory(
            lambda self: self.sent_at + self.settings.renew_deadline, takes_self=True
        ),
    )

    def renewed(self, sent_at: float) -> Grant:
        """Return this grant as renewed by a request sent at ``sent_at``."""
        return attrs.evolve(self, sent_at=sent_at)
