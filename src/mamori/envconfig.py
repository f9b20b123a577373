"""Typed environment helpers that fail loudly.

Settings come from environment variables with safe defaults for the embedded set-up. A value that
is present but malformed stops the process at start-up with a one-line reason, rather than being
silently replaced by a default.
"""

from __future__ import annotations

import os
from pathlib import Path


class ConfigError(Exception):
    """Raised when an environment variable holds a value Mamori cannot use."""


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no, on/off)")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_secret(name: str) -> str:
    """A secret from NAME, or from the file named by NAME_FILE (for container secrets)."""
    value = os.environ.get(name, "")
    if value:
        return value
    path = os.environ.get(f"{name}_FILE", "")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{name}_FILE={path!r} cannot be read: {exc.strerror}") from None
    return ""


def load_instance_file(path: Path) -> list[str]:
    """Put the ``NAME=value`` lines of a local instance file into the environment, below any
    variable that is already set (the environment always wins), and return the names it set.

    ``make run`` writes such a file (``var/instance.env``) so that ``mamori`` commands in another
    terminal reach the same instance without exporting anything. The format is deliberately
    small — comments, blank lines and ``NAME=value`` — and anything else stops start-up with the
    file and line, as a malformed variable does.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ConfigError(f"{path} cannot be read: {exc.strerror}") from None
    applied = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier() or not name.isupper():
            raise ConfigError(f"{path}:{number}: expected NAME=value, found {line[:60]!r}")
        if name not in os.environ:
            os.environ[name] = value.strip()
            applied.append(name)
    return applied
