"""The web dashboard: a running tree, live, in a browser (the ``dashboard`` extra).

``serve(tree, dashboard="127.0.0.1:8080")`` or ``supervised-loops run
--dashboard 127.0.0.1:8080`` starts it beside the tree, in the same event
loop. Modules: `server` (HTTP endpoints, live stream), `access` (who may
see and steer), `snapshot` (the tree as rows, changes per browser),
`history` (recent events and each actor's record, bounded), `watch` (which
loops get a ring of recent iterations, ``supervised_loops.loops.recent``:
those a browser shows). The page is in ``static/``. The guide is
``docs/dashboard.md``.
"""

from __future__ import annotations

from .access import parse_address
from .history import History
from .server import DEFAULT_ADDRESS, Dashboard

__all__ = ["DEFAULT_ADDRESS", "Dashboard", "History", "parse_address"]
