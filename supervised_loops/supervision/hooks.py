"""What a supervisor's machinery asks of the supervisor it runs: its hooks.

The machinery (`supervision.core`, `supervision.restarts`,
`supervision.engine`) calls these, and only these, through
``SupervisorCore._hooks``; `supervision.face.Supervisor` is their one
definition, with the defaults and the contracts users override in a
subclass (see docs/subclassing.md). Declaring them here as a protocol,
instead of as stubs on the machinery's base class that the face overrides,
keeps each hook defined once and makes the machinery's dependency on the
face explicit and checked by mypy.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ..backoff import ExponentialBackoff
    from ..core.actor import Actor
    from ..messages import Exit
    from .child import Child
    from .specs import ChildSpec, Directive

__all__ = ["SupervisorHooks"]


class SupervisorHooks(Protocol):
    """The hooks of one supervisor; `Supervisor` documents each one."""

    def _declared(self) -> Iterable[ChildSpec | Actor]:
        """The children as declared (read at each start, as OTP's ``init``)."""
        ...

    async def before_start(self) -> None: ...

    async def after_stop(self) -> None: ...

    def should_retry(self, child: Child, error: BaseException, attempt: int) -> bool | None: ...

    def backoff_for(self, child: Child) -> ExponentialBackoff | None: ...

    async def on_child_failure(self, child: Child, error: BaseException) -> None: ...

    async def on_child_exit(self, child: Child, exit: Exit) -> None: ...

    def decide(self, child: Child, error: BaseException) -> Directive | str | None: ...
