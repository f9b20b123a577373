"""The ``services`` section: what the init system starts at boot, and (live) what runs now."""

from __future__ import annotations

import re

from ..context import Section

SYSTEMD_CONFIG = "/etc/systemd/system"
_UNIT_RE = re.compile(r"^[\w@:.\\-]+\.(service|socket|timer|target|path|mount|automount|swap)$")


def _init_system(section: Section) -> str | None:
    for path in ("/sbin/init", "/usr/sbin/init"):
        target = section.readlink(path)
        if target and "systemd" in target:
            return "systemd"
    if section.exists("/sbin/openrc") or section.is_dir("/etc/runlevels"):
        return "openrc"
    if section.exists("/etc/inittab"):
        return "sysvinit"
    if section.exists("/lib/systemd/systemd") or section.exists("/usr/lib/systemd/systemd"):
        return "systemd"
    return None


def _systemd_enabled(section: Section) -> tuple[set[str], list[str]]:
    enabled, masked = set(), []
    for entry in section.list_dir(SYSTEMD_CONFIG):
        path = f"{SYSTEMD_CONFIG}/{entry}"
        if entry.endswith((".wants", ".requires")):
            for unit in section.list_dir(path):
                if _UNIT_RE.match(unit):
                    enabled.add(unit)
        elif _UNIT_RE.match(entry):
            target = section.readlink(path)
            if target == "/dev/null":
                masked.append(entry)
    return enabled, sorted(masked)


def _openrc_enabled(section: Section) -> set[str]:
    enabled = set()
    for runlevel in section.list_dir("/etc/runlevels"):
        for service in section.list_dir(f"/etc/runlevels/{runlevel}"):
            enabled.add(service)
    return enabled


def _sysvinit_enabled(section: Section) -> set[str]:
    enabled = set()
    for runlevel in ("2", "3", "5"):
        for entry in section.list_dir(f"/etc/rc{runlevel}.d"):
            match = re.match(r"^S\d\d(.+)$", entry)
            if match:
                enabled.add(match.group(1))
    return enabled


def _running(section: Section, init: str | None) -> list[str] | None:
    ctx = section.ctx
    if not ctx.live:
        return None  # a mounted root runs nothing; documented, not an error
    if init != "systemd":
        section.error(None, f"running services are only read from systemd (init: {init})")
        return None
    if section.kind("/run/systemd/system") != "dir":
        section.error("/run/systemd/system", "systemd is not running (not booted with systemd)")
        return None
    result = ctx.run("systemctl-running")
    if not result.ok:
        section.command_error(result)
        return None
    running = set()
    for line in (result.output or "").splitlines():
        fields = line.split()
        if fields and _UNIT_RE.match(fields[0]):
            running.add(fields[0])
    return sorted(running)


def collect_services(section: Section) -> dict:
    ctx = section.ctx
    init = _init_system(section)
    enabled, masked = _systemd_enabled(section)
    if init == "openrc":
        enabled |= _openrc_enabled(section)
    elif init == "sysvinit":
        enabled |= _sysvinit_enabled(section)
    running = _running(section, init)
    ctx.facts["enabled_units"] = enabled
    ctx.facts["running_units"] = set(running) if running is not None else None
    ctx.facts["init"] = init
    return section.finish(
        {"init": init, "enabled": sorted(enabled), "masked": masked, "running": running}
    )


def unit_active(facts: dict, *names: str) -> bool:
    """Whether a unit (``foo.service``, or an OpenRC/sysvinit service ``foo``) is enabled or
    running."""
    enabled = facts.get("enabled_units") or set()
    running = facts.get("running_units") or set()
    for name in names:
        bare = name.rsplit(".", 1)[0] if name.endswith((".service", ".timer")) else name
        for candidate in (name, bare):
            if candidate in enabled or candidate in running:
                return True
    return False
