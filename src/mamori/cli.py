"""``mamori``: the Django management entry point, so ``mamori migrate`` or ``mamori demo`` work."""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mamori.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(["mamori", *(argv if argv is not None else sys.argv[1:])])
    except ImproperlyConfigured as exc:
        sys.stderr.write(f"mamori: configuration error: {exc}\n")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
