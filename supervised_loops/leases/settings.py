"""How long a lease lasts, when it is renewed, and who asks for it.

The three durations follow Kubernetes' leader election, whose rules have
survived years of production use:

* ``ttl``: how long the backend keeps a lease after the last successful
  acquire or renew. A dead holder is replaced at most ``ttl`` (plus one
  standby retry) after its last renewal.
* ``renew_deadline``: how long the holder trusts a grant, counted on its own
  event-loop clock from the moment it *sent* the request that produced the
  grant. It is shorter than ``ttl`` so that the holder always steps down
  before the backend can give the lease to someone else, even if its
  request sat in a network buffer or its clock runs a little fast.
* ``retry_period``: how often a standby asks for the lease, and how soon a
  holder retries a renewal that failed. The renew deadline must leave room
  for more than one retry, hence ``renew_deadline > 1.2 × retry_period``.

A holder renews every ``ttl / 3``, so a healthy holder has two renewals in
flight before its renew deadline (``2/3 ttl`` by default) runs out.
"""

from __future__ import annotations

import os
import secrets
import socket

import attrs

from .. import _validate

__all__ = ["LeaseSettings", "default_holder_id", "validate_name"]


def default_holder_id() -> str:
    """Return ``"hostname:pid:random"``, unique to this call.

    The random part makes two keepers in one process, or a process that
    reuses a dead one's pid, distinct holders.
    """
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def validate_name(argument: str, value: object) -> str:
    """Return ``value`` if it is a non-empty string, else raise.

    Raises:
        TypeError: ``value`` is not a string.
        ValueError: ``value`` is empty.
    """
    if not isinstance(value, str):
        _validate.type_error(argument, "a string", value)
    if not value:
        _validate.value_error(argument, "a non-empty string", value)
    return value


def _ttl(value: object) -> float:
    return _validate.seconds("ttl", value, allow_zero=False)


def _renew_deadline(value: object) -> float:
    return _validate.seconds("renew_deadline", value, allow_zero=False)


def _retry_period(value: object) -> float:
    return _validate.seconds("retry_period", value, allow_zero=False)


def _default_renew_deadline(settings: LeaseSettings) -> float:
    return settings.ttl * 2 / 3


def _default_retry_period(settings: LeaseSettings) -> float:
    # Kubernetes' defaults are ttl 15 s, renew deadline 10 s, retry 2 s.
    return settings.ttl * 2 / 15


@attrs.frozen
class LeaseSettings:
    """The validated timing of one lease (all durations in seconds).

    Args:
        ttl: lifetime of a grant in the backend after each acquire or renew.
            Default 15 s.
        renew_deadline: how long after sending a request its grant is
            trusted locally. Default ``2/3 ttl``.
        retry_period: interval of a standby's acquisition attempts and of a
            failed renewal's retries. Attempts are jittered down to 75 % of
            it, never above it. Default ``2/15 ttl`` (2 s for 15 s).

    Raises:
        TypeError: a duration is not a number.
        ValueError: a duration is not finite and positive, or the rule
            ``ttl > renew_deadline > 1.2 × retry_period`` and
            ``renew_deadline > ttl / 3`` (the renewal interval) is broken.
    """

    ttl: float = attrs.field(default=15.0, converter=_ttl)
    renew_deadline: float = attrs.field(
        default=attrs.Factory(_default_renew_deadline, takes_self=True),
        converter=_renew_deadline,
    )
    retry_period: float = attrs.field(
        default=attrs.Factory(_default_retry_period, takes_self=True),
        converter=_retry_period,
    )

    def __attrs_post_init__(self) -> None:
        if not self.renew_deadline < self.ttl:
            raise ValueError(
                f"'renew_deadline' must be < ttl ({self.ttl!r}) (got {self.renew_deadline!r})"
            )
        if not self.renew_deadline > self.renew_interval:
            raise ValueError(
                f"'renew_deadline' must be > ttl / 3 ({self.renew_interval!r}), the renewal "
                f"interval (got {self.renew_deadline!r})"
            )
        if not self.renew_deadline > 1.2 * self.retry_period:
            raise ValueError(
                f"'retry_period' must be < renew_deadline / 1.2 "
                f"({self.renew_deadline / 1.2!r}) (got {self.retry_period!r})"
            )

    @property
    def renew_interval(self) -> float:
        """Seconds between a successful renewal's request and the next one: ``ttl / 3``."""
        return self.ttl / 3
