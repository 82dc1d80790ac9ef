"""Steering a running tree from another shell: a local socket speaking JSON.

``supervised_loops.run(tree, control=...)`` serves this; ``supervised-loops
ctl`` is its client. The socket is a Unix domain socket in a directory only
the owner can enter (mode 0700), and the socket itself is mode 0600: on a
shared machine nobody else can connect. Requests are JSON, never pickle, and
every field is validated before anything is sent to the tree; a bad request
gets an error reply and leaves the tree untouched.

Protocol: one request per line, one reply per line, UTF-8 JSON:

    → {"command": "stop", "path": "app/poller"}
    ← {"ok": true, "result": {"message": "Stop", "iteration": 12, "next_iteration": null}}
    → {"command": "frobnicate"}
    ← {"ok": false, "error": {"type": "ValueError", "message": "'command' must be one of ..."}}

Paths are written as ``status`` shows them (``"demo/ingest/poller"``) or
relative to the root (``"ingest/poller"``); a request without ``path`` is
for the root. The full protocol, with every error and the connection
limits, is in ``docs/cli.md``.

This module gathers the public names; the protocol (`control_protocol`),
the server (`control_server`, with `control_limits` and the event streams
of `control_stream`) and the client (`control_client`) each live in their
own module.
"""

from __future__ import annotations

from .control_client import ControlClient
from .control_limits import DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, ControlLimits
from .control_protocol import (
    COMMANDS,
    EVENT_TYPES,
    MAX_REPLY_BYTES,
    MAX_REQUEST_BYTES,
    REQUEST_TIMEOUT,
    check_path,
    decode_request,
    default_socket_path,
    parse_request,
    to_json,
)
from .control_server import ControlServer

__all__ = [
    "COMMANDS",
    "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "EVENT_TYPES",
    "MAX_REPLY_BYTES",
    "MAX_REQUEST_BYTES",
    "REQUEST_TIMEOUT",
    "ControlClient",
    "ControlLimits",
    "ControlServer",
    "check_path",
    "decode_request",
    "default_socket_path",
    "parse_request",
    "to_json",
]
