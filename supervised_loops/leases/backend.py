"""What a lease backend does: acquire, renew, release. Three calls, no more."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .grant import Grant
from .settings import LeaseSettings

__all__ = ["LeaseBackend"]


@runtime_checkable
class LeaseBackend(Protocol):
    """A store that grants named leases to one holder at a time.

    Every method reads the event loop's ``time()`` *before* it sends its
    request and stores it in the returned grant's ``sent_at``. A backend
    raises (any ``Exception``) when it cannot tell: the keeper treats that as
    "unreachable" and retries until the grant's deadline, never as a loss on
    its own.
    """

    async def acquire(self, name: str, holder: str, settings: LeaseSettings) -> Grant | None:
        """Grant the lease ``name`` to ``holder`` if nobody holds it, else return None.

        A lease held by anyone, ``holder`` included, is refused: two
        processes configured with the same holder id never both hold it.
        Every grant gets a fence larger than any earlier grant of ``name``.
        """
        ...

    async def renew(self, grant: Grant) -> Grant | None:
        """Extend ``grant`` by its ttl if it is still the current one, else return None.

        The fence and holder are compared first: a grant that expired and
        was given to someone else is never revived.
        """
        ...

    async def release(self, grant: Grant) -> None:
        """End ``grant`` at once if it is still the current one (else do nothing).

        The fence counter survives: the next grant's fence is still larger.
        """
        ...
