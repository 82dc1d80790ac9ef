"""The exception a body meets when its lease is gone."""

from __future__ import annotations

__all__ = ["LeaseNotHeld"]


class LeaseNotHeld(RuntimeError):
    """The lease is not held (never acquired, lost, or its deadline passed).

    Raised by ``LeaseKeeper.ensure()`` so that a body can check its lease
    right before a side effect.

    Attributes:
        name: the lease's name.
        reason: why it is not held (``"standby"``, ``"deadline passed"``,
            ``"refused"``, ``"unreachable"``, ``"stopped"``).
    """

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"lease {name!r} is not held ({reason})")
        self.name = name
        self.reason = reason
