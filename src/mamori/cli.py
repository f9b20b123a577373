"""``mamori``: the Django management entry point, so ``mamori migrate`` or ``mamori demo`` work."""

from __future__ import annotations

import os
import sys

# Commands that read files and print a result: they need no database and no configuration, so
# they run right after ``make install`` (settings.OFFLINE_COMMAND).
OFFLINE_COMMANDS = {("catalogue", "check"), ("supplychain", "analyse")}


def main(argv: list[str] | None = None) -> None:
    arguments = list(argv if argv is not None else sys.argv[1:])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mamori.settings")
    if tuple(arguments[:2]) in OFFLINE_COMMANDS:
        os.environ["MAMORI_OFFLINE_COMMAND"] = "1"
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(["mamori", *arguments])
    except ImproperlyConfigured as exc:
        sys.stderr.write(f"mamori: configuration error: {exc}\n")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
