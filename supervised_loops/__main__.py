"""`python -m supervised_loops` runs the console command."""

from __future__ import annotations

from .service.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
