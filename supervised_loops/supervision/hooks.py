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

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from ..backoff import ExponentialBackoff
    from ..core.actor import Actor
    from ..messages import Exit
    from .child import Child
    from .specs import ChildSpec, Directive

__all__ = ["SupervisorHooks", "default_hook", "overridden"]

F = TypeVar("F", bound=Callable[..., Any])


def default_hook(function: F) -> F:
    """Mark a hook of the public face as its do-nothing default.

    The machinery skips calling it (awaiting a coroutine that does nothing
    costs a few microseconds, a tenth of a restart; a ``before_start`` that
    does nothing lets a tree start in the call that launches it). A
    subclass that overrides it is called as always.
    """
    function._default_hook = True  # type: ignore[attr-defined]
    return function


def overridden(hooks: object, name: str) -> bool:
    """Whether hook ``name`` of ``hooks`` is the user's, not the face's default."""
    # Looked up on the instance (a bound method passes the attribute through):
    # a hook set on the instance counts as much as one defined by a subclass.
    return not getattr(getattr(hooks, name), "_default_hook", False)


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
