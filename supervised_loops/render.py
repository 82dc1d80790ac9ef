"""Text rendering of a status snapshot, as a tree (public import path).

The implementation lives in the service layer (`supervised_loops.service.render`);
this module keeps the documented import path `supervised_loops.render`.
"""

from __future__ import annotations

from .service.render import format_relative as format_relative
from .service.render import render_status as render_status

__all__ = ["format_relative", "render_status"]
