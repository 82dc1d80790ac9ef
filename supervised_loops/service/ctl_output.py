"""What ``supervised-loops ctl`` prints for a reply."""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any

from ..messages import ActorStatus, State
from .render import render_status

__all__ = ["describe_ack", "describe_health", "print_reply", "status_from_json"]


def print_reply(reply: dict[str, Any], raw: bool, path: str = "") -> int:
    """Print ``reply`` (an error on stderr); return the exit status.

    0 for an ``ok`` reply, 1 for an error reply; for ``health``, 0 only when
    the service is healthy (ready and live).
    """
    status = 0 if reply.get("ok") else 1
    if raw:
        print(json.dumps(reply, indent=2))
        result = reply.get("result")
        if status == 0 and isinstance(result, dict) and "healthy" in result:
            return 0 if result["healthy"] else 1
        return status
    if status:
        error = reply.get("error", {})
        print(f"error: {error.get('type')}: {error.get('message')}", file=sys.stderr)
        return status
    result = reply.get("result")
    if isinstance(result, dict) and "healthy" in result:
        print(describe_health(result))
        return 0 if result["healthy"] else 1
    if isinstance(result, dict) and "state" in result:
        print(render_status(status_from_json(result)))
    elif isinstance(result, dict) and "iteration" in result:
        print(describe_ack(path, result))
    else:
        print(json.dumps(result, indent=2))
    return status


def describe_health(health: dict[str, Any]) -> str:
    """One line for a ``health`` reply: ``healthy: 'demo' is up (6 actors running)``."""
    if health.get("healthy"):
        verdict = "healthy"
    elif not health.get("live"):
        verdict = "not live"
    else:
        verdict = "not ready"
    return f"{verdict}: {health.get('reason')}"


def describe_ack(path: str, ack: dict[str, Any]) -> str:
    """One line for an acknowledgement: ``app/poller: Stop done at iteration 6, not scheduled``.

    A Loop's ``Restart`` is acknowledged once the new run has planned its
    first iteration, so the line says when it is due. A worker's or a
    supervisor's has no schedule, and a Loop's run may end before its first
    plan: then the line says that a new run has begun rather than claiming
    that nothing is scheduled.
    """
    upcoming = ack.get("next_iteration")
    if upcoming:
        after = f", next run {upcoming}"
    elif ack.get("message") == "Restart":
        after = ", a new run has begun"
    else:
        after = ", not scheduled"
    return f"{path or 'root'}: {ack['message']} done at iteration {ack['iteration']}{after}"


def status_from_json(data: dict[str, Any]) -> ActorStatus:
    """The `ActorStatus` a ``status`` reply describes."""
    upcoming = data.get("next_iteration")
    return ActorStatus(
        name=data["name"],
        path=data["path"],
        kind=data["kind"],
        state=State(data["state"]),
        current_loop=data["current_loop"],
        next_iteration=None if upcoming is None else dt.datetime.fromisoformat(upcoming),
        failures=data["failures"],
        restarts=data["restarts"],
        last_error=data["last_error"],
        schedule=data["schedule"],
        lease=data.get("lease"),
        children=tuple(status_from_json(child) for child in data["children"]),
    )
