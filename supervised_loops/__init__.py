"""supervised_loops: periodic loops as actors, in Erlang/OTP-style supervision trees.

Import everything from here; the submodules users name are `messages`,
`schedule`, `events`, `testing`, `streams` and `render`; with their extras,
`telemetry.otel`, `telemetry.prometheus` and `telemetry.server`, and the
pytest plugin, `pytest_plugin`. Every type that
appears in the signature of something exported here is exported here too
(tests/test_exports.py checks it).

This module only re-exports. The layers, lowest first (each imports only
those below it; tests/test_layers.py checks it): the pure modules at the top
level (``schedule``, ``backoff``, ``messages``, ``events``, ``errors``,
``clock``, ``instrument``); ``core`` (the actor, the runnable base, exit
classification, the parent protocol); ``loops`` and ``workers`` (the actor
kinds); ``supervision``; ``service``, ``streams``, ``testing`` and this face.
See docs/architecture.md.
"""

from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _distribution_version

try:
    #: The installed distribution's version (one source: pyproject.toml).
    __version__ = _distribution_version("supervised-loops")
except _PackageNotFoundError:  # pragma: no cover - a source tree never installed
    __version__ = "0+unknown"

from .backoff import BackoffTracker as BackoffTracker
from .backoff import ExponentialBackoff as ExponentialBackoff
from .backoff import RetryRule as RetryRule
from .core.actor import DEFAULT_ASK_TIMEOUT as DEFAULT_ASK_TIMEOUT
from .core.actor import Actor as Actor
from .core.actor import DeadLetters as DeadLetters
from .core.actor import dead_letters as dead_letters
from .errors import ActorNotRunning as ActorNotRunning
from .errors import ActorStopped as ActorStopped
from .errors import AskTimeout as AskTimeout
from .errors import ChildNotFound as ChildNotFound
from .errors import ChildStartFailed as ChildStartFailed
from .errors import MailboxFull as MailboxFull
from .errors import RestartIntensityExceeded as RestartIntensityExceeded
from .errors import UnhandledMessage as UnhandledMessage
from .events import Event as Event
from .events import Subscription as Subscription
from .leases import Grant as Grant
from .leases import Lease as Lease
from .leases import LeaseBackend as LeaseBackend
from .leases import LeaseKeeper as LeaseKeeper
from .leases import LeaseNotHeld as LeaseNotHeld
from .leases import LeaseSettings as LeaseSettings
from .loops.face import Loop as Loop
from .loops.face import loop as loop
from .messages import Ack as Ack
from .messages import ActorStatus as ActorStatus
from .messages import Cancel as Cancel
from .messages import ChangeInterval as ChangeInterval
from .messages import ControlMessage as ControlMessage
from .messages import Exit as Exit
from .messages import ExitKind as ExitKind
from .messages import GetStatus as GetStatus
from .messages import Pause as Pause
from .messages import Restart as Restart
from .messages import Resume as Resume
from .messages import RunNow as RunNow
from .messages import State as State
from .messages import Stop as Stop
from .schedule import Cron as Cron
from .schedule import DailyAt as DailyAt
from .schedule import Every as Every
from .schedule import Schedule as Schedule
from .service.control import ControlLimits as ControlLimits
from .service.runner import run as run
from .service.runner import serve as serve
from .supervision.face import Child as Child
from .supervision.face import Supervisor as Supervisor
from .supervision.specs import INFINITY as INFINITY
from .supervision.specs import AutoShutdown as AutoShutdown
from .supervision.specs import ChildCounts as ChildCounts
from .supervision.specs import ChildInfo as ChildInfo
from .supervision.specs import ChildSpec as ChildSpec
from .supervision.specs import Directive as Directive
from .supervision.specs import Quarantine as Quarantine
from .supervision.specs import RestartType as RestartType
from .supervision.specs import Strategy as Strategy
from .supervision.specs import child as child
from .workers.worker import Worker as Worker
from .workers.worker import current_worker as current_worker
from .workers.worker import worker as worker

__all__ = [
    "DEFAULT_ASK_TIMEOUT",
    "INFINITY",
    "Ack",
    "Actor",
    "ActorNotRunning",
    "ActorStatus",
    "ActorStopped",
    "AskTimeout",
    "AutoShutdown",
    "BackoffTracker",
    "Cancel",
    "ChangeInterval",
    "Child",
    "ChildCounts",
    "ChildInfo",
    "ChildNotFound",
    "ChildSpec",
    "ChildStartFailed",
    "ControlLimits",
    "ControlMessage",
    "Cron",
    "DailyAt",
    "DeadLetters",
    "Directive",
    "Event",
    "Every",
    "Exit",
    "ExitKind",
    "ExponentialBackoff",
    "GetStatus",
    "Grant",
    "Lease",
    "LeaseBackend",
    "LeaseKeeper",
    "LeaseNotHeld",
    "LeaseSettings",
    "Loop",
    "MailboxFull",
    "Pause",
    "Quarantine",
    "Restart",
    "RestartIntensityExceeded",
    "RestartType",
    "Resume",
    "RetryRule",
    "RunNow",
    "Schedule",
    "State",
    "Stop",
    "Strategy",
    "Subscription",
    "Supervisor",
    "UnhandledMessage",
    "Worker",
    "child",
    "current_worker",
    "dead_letters",
    "loop",
    "run",
    "serve",
    "worker",
]

for _name in __all__:
    _object = globals()[_name]
    if getattr(_object, "__module__", "").startswith("supervised_loops."):
        try:
            _object.__module__ = "supervised_loops"
        except (AttributeError, TypeError):
            pass
del _name, _object, _distribution_version, _PackageNotFoundError
