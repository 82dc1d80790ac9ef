"""The web dashboard: a running tree, live, in a browser (the ``dashboard`` extra).

``serve(tree, dashboard="127.0.0.1:8080")`` or ``supervised-loops run
--dashboard 127.0.0.1:8080`` starts it beside the tree, in the same event
loop. Modules: `server` (HTTP endpoints, live stream), `access` (who may
see and steer), `snapshot` (the tree as rows, changes per browser),
`history` (recent iterations and events, bounded), `fanout` (sharing the
instrumentation hook with exporters). The page is in ``static/``. The guide
is ``docs/dashboard.md``.
"""

from __future__ import annotations

from .access import parse_address
from .fanout import Fanout, attach, detach
from .history import History
from .server import DEFAULT_ADDRESS, Dashboard

__all__ = ["DEFAULT_ADDRESS", "Dashboard", "Fanout", "History", "attach", "detach", "parse_address"]
