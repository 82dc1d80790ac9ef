"""supervised_loops: periodic loops as actors, in Erlang/OTP-style supervision trees.

Import everything from here; the submodules users name are
:mod:`~supervised_loops.messages`, :mod:`~supervised_loops.schedule`,
:mod:`~supervised_loops.events` and :mod:`~supervised_loops.testing`.
"""

from .actor import DEFAULT_ASK_TIMEOUT as DEFAULT_ASK_TIMEOUT
from .actor import Actor as Actor
from .actor import DeadLetters as DeadLetters
from .actor import dead_letters as dead_letters
from .backoff import ExponentialBackoff as ExponentialBackoff
from .backoff import RetryRule as RetryRule
from .clock import Clock as Clock
from .clock import SystemClock as SystemClock
from .errors import ActorNotRunning as ActorNotRunning
from .errors import ActorStopped as ActorStopped
from .errors import AskTimeout as AskTimeout
from .errors import RestartIntensityExceeded as RestartIntensityExceeded
from .errors import UnhandledMessage as UnhandledMessage
from .loop import Loop as Loop
from .loop import loop as loop
from .messages import Ack as Ack
from .messages import ActorStatus as ActorStatus
from .messages import Cancel as Cancel
from .messages import ChangeInterval as ChangeInterval
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

__all__ = [
    "DEFAULT_ASK_TIMEOUT",
    "Ack",
    "Actor",
    "ActorNotRunning",
    "ActorStatus",
    "ActorStopped",
    "AskTimeout",
    "Cancel",
    "ChangeInterval",
    "Clock",
    "Cron",
    "DailyAt",
    "DeadLetters",
    "Every",
    "ExponentialBackoff",
    "GetStatus",
    "Loop",
    "Pause",
    "Restart",
    "RestartIntensityExceeded",
    "Resume",
    "RetryRule",
    "RunNow",
    "Schedule",
    "State",
    "Stop",
    "SystemClock",
    "UnhandledMessage",
    "dead_letters",
    "loop",
]

for _name in __all__:
    _object = globals()[_name]
    if getattr(_object, "__module__", "").startswith("supervised_loops."):
        try:
            _object.__module__ = "supervised_loops"
        except (AttributeError, TypeError):
            pass
del _name, _object
