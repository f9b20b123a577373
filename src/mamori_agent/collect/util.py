"""Small parsing helpers shared by the collectors."""

from __future__ import annotations

import datetime
import re

# datetime.UTC only exists from Python 3.11; the agent runs on 3.9.
UTC = datetime.timezone(datetime.timedelta(0))

_VERSION_PART = re.compile(r"(\d+)|(\D+)")


def version_key(text: str) -> tuple:
    """Natural order for kernel release names (``5.10.0-9`` before ``5.10.0-10``)."""
    return tuple(
        (0, int(number), "") if number else (1, 0, word)
        for number, word in _VERSION_PART.findall(text)
    )


def strip_comment(line: str, marker: str = "#") -> str:
    return line.split(marker, 1)[0].strip()


def key_values(text: str, *, separator: str | None = "=", comment: str = "#") -> dict[str, str]:
    """``key = value`` (or ``key value`` when ``separator`` is None) lines; the last one wins.

    Keys are lower-cased; a key without a value maps to ``""``.
    """
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = strip_comment(raw, comment)
        if not line:
            continue
        if separator is None:
            key, value = [*line.split(None, 1), ""][:2]
        else:
            key, found, value = line.partition(separator)
            if not found:
                key, value = [*line.split(None, 1), ""][:2]
        values[key.strip().lower()] = value.strip()
    return values


def unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def parse_bool(value: str | None) -> bool | None:
    if value is None:
        return None
    lowered = unquote(value).strip().lower()
    if lowered in ("1", "yes", "true", "on", "enabled"):
        return True
    if lowered in ("0", "no", "false", "off", "disabled"):
        return False
    return None


def parse_int(value: str | None) -> int | None:
    if value is None:
        return None
    value = unquote(value).strip()
    if re.fullmatch(r"[+-]?\d{1,18}", value):
        return int(value)
    return None


def unit_stem(unit: str) -> str:
    """``foo.service`` → ``foo``; ``foo@bar.service`` → ``foo@bar``."""
    for suffix in (".service", ".timer", ".socket", ".target", ".path", ".mount"):
        if unit.endswith(suffix):
            return unit[: -len(suffix)]
    return unit
