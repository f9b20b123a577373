"""Entry point of ``mamori-agent``. Until the agent exists it says so and fails, rather than
pretending to collect evidence."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    sys.stderr.write(
        "mamori-agent: not available yet; the host agent arrives with the "
        "technical-verification issue\n"
    )
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
