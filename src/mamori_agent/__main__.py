"""Entry point of ``mamori-agent`` (console script, ``python -m mamori_agent`` and the zipapp)."""

from __future__ import annotations

from mamori_agent.cli import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
