"""The ``backups`` section (informational): backup tools and what schedules them."""

from __future__ import annotations

import re

from ..context import Section
from .packages import is_installed

# tool → (package names, program names, words that mention it in a schedule)
BACKUP_TOOLS = {
    "restic": (("restic",), ("restic",), ("restic",)),
    "borgbackup": (("borgbackup", "borgbackup2"), ("borg", "borgmatic"), ("borg", "borgmatic")),
    "bacula-fd": (("bacula-fd", "bacula-client"), ("bacula-fd",), ("bacula",)),
    "bareos-filedaemon": (("bareos-filedaemon",), ("bareos-fd",), ("bareos",)),
    "duplicity": (("duplicity",), ("duplicity",), ("duplicity", "duply")),
    "rsnapshot": (("rsnapshot",), ("rsnapshot",), ("rsnapshot",)),
    "timeshift": (("timeshift",), ("timeshift",), ("timeshift",)),
    "amanda-client": (("amanda-client",), ("amdump", "amandad"), ("amdump", "amanda")),
    "veeam": (("veeam", "veeamsnap", "blksnap"), ("veeamconfig",), ("veeam",)),
    "rclone": (("rclone",), ("rclone",), ("rclone",)),
}
_BIN_DIRECTORIES = ("/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin", "/usr/local/sbin")
_CRON_FILES = ("/etc/crontab",)
_CRON_PATTERNS = (
    "/etc/cron.d/*",
    "/etc/cron.hourly/*",
    "/etc/cron.daily/*",
    "/etc/cron.weekly/*",
    "/etc/cron.monthly/*",
    "/var/spool/cron/crontabs/*",
    "/var/spool/cron/*",
    "/etc/crontabs/*",
)


def _mentions(text: str) -> list[str]:
    found = []
    for tool, (_packages, _programs, words) in BACKUP_TOOLS.items():
        if any(re.search(rf"\b{re.escape(word)}\b", text) for word in words):
            found.append(tool)
    return found


def collect_backups(section: Section) -> dict:
    facts = section.ctx.facts
    tools = []
    for tool, (packages, programs, _words) in BACKUP_TOOLS.items():
        if is_installed(facts, *packages) or any(
            section.kind(f"{directory}/{program}") == "file"
            for directory in _BIN_DIRECTORIES
            for program in programs
        ):
            tools.append(tool)
    timers = []
    for unit in sorted(facts.get("enabled_units") or ()):
        if not unit.endswith(".timer"):
            continue
        service = unit[: -len(".timer")] + ".service"
        text = unit + "\n"
        for directory in ("/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"):
            body = section.read_text(f"{directory}/{service}", limit=1024 * 1024)
            if body is not None:
                text += body
                break
        for tool in _mentions(text):
            timers.append({"kind": "systemd-timer", "source": unit, "tool": tool})
    cron_files = list(_CRON_FILES)
    for pattern in _CRON_PATTERNS:
        cron_files.extend(path for path in section.glob(pattern) if path not in cron_files)
    for path in cron_files:
        if section.kind(path) != "file":
            continue
        text = section.read_text(path, limit=1024 * 1024)
        if text is None:
            continue
        active = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        for tool in _mentions(active):
            timers.append({"kind": "cron", "source": path, "tool": tool})
    return section.finish({"tools": tools, "timers": timers})
