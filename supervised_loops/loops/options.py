"""Checks of the options that ``loop()`` and ``Loop`` take.

Kept apart from the Loop so that ``loop(...)`` can refuse a bad option at the
call that wrote it, before any function is decorated, with the same checks
and messages as ``Loop(...)``. See docs/loops.md, "Validation".

May import: the pure top-level modules (the validators and the backoff types).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, TypeAlias

from .. import _validate
from ..backoff import ExponentialBackoff, RetryRule, retry_rule

Missed: TypeAlias = Literal["catch_up", "skip"]


def check_options(
    *,
    count: int | None,
    reconnect: bool,
    name: str | None,
    missed: Missed,
    overlap: bool | int,
    wait_first: bool,
    max_consecutive_failures: int | None,
    backoff: ExponentialBackoff | None,
    retry: Iterable[RetryRule],
    mailbox_size: int,
) -> tuple[RetryRule, ...]:
    """Check the options of `loop` and `Loop`; return the retry rules as a tuple.

    Run by ``loop()`` itself, so a bad option fails at the call that wrote it.
    """
    if count is not None:
        _validate.positive_int("count", count)
    _validate.boolean("reconnect", reconnect)
    if name is not None:
        _validate.actor_name("name", name)
    _validate.choice("missed", missed, ("catch_up", "skip"))
    overlap_limit(overlap)
    _validate.boolean("wait_first", wait_first)
    if max_consecutive_failures is not None:
        _validate.positive_int("max_consecutive_failures", max_consecutive_failures)
    _validate.optional_instance("backoff", backoff, ExponentialBackoff, "an ExponentialBackoff")
    _validate.positive_int("mailbox_size", mailbox_size)
    return _validate.items("retry", retry, retry_rule)


def overlap_limit(overlap: bool | int) -> int:
    """Return how many iterations may run at once: 0 means no limit.

    Raises:
        TypeError: ``overlap`` is neither a bool nor an int.
        ValueError: ``overlap`` is an int <= 0.
    """
    if not isinstance(overlap, int):  # bool is an int
        _validate.type_error("overlap", "a bool or an int", overlap)
    if overlap is True:
        return 0  # no limit
    if overlap is False:
        return 1
    return _validate.positive_int("overlap", overlap)
