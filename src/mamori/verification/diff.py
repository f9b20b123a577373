"""What changed on a host between two collections: evidence and evaluation JSON in, a plain dict
out. Pure logic, no Django imports.

Evidence is read defensively (the schema has already been checked on upload, but a stored
document of an older schema revision may lack a section): anything missing is treated as empty.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from mamori.core.controls import FIVE_CONTROLS


def _get(document: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(document, Mapping):
            return None
        document = document.get(key)
    return document


def _items(document: Any, *path: str) -> list[Mapping]:
    value = _get(document, *path)
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _strings(document: Any, *path: str) -> set[str]:
    value = _get(document, *path)
    return {item for item in value if isinstance(item, str)} if isinstance(value, list) else set()


def _sort_key(value: Any) -> tuple:
    """Mixed types (a port is an integer or an "a-b" range) sort without a TypeError."""
    if isinstance(value, tuple):
        return tuple(_sort_key(item) for item in value)
    if isinstance(value, bool) or value is None:
        return (0, str(value))
    if isinstance(value, int | float):
        return (1, value, "")
    return (2, 0, str(value))


def _sorted(values: Iterable) -> list:
    return sorted(values, key=_sort_key)


# --- Packages ---------------------------------------------------------------------------------


def _package_versions(evidence: Any) -> dict[tuple[str, str, str], set[str]]:
    """(manager, name, architecture) → installed versions. A name can be installed more than
    once (Python distributions in two site directories), hence a set."""
    versions: dict[tuple[str, str, str], set[str]] = {}
    for item in _items(evidence, "packages", "items"):
        name = item.get("name")
        if not isinstance(name, str):
            continue
        key = (str(item.get("manager") or ""), name, str(item.get("architecture") or ""))
        versions.setdefault(key, set()).add(str(item.get("version") or ""))
    return versions


def _package(key: tuple[str, str, str], versions: set[str]) -> dict:
    manager, name, architecture = key
    return {
        "manager": manager,
        "name": name,
        "architecture": architecture,
        "version": ", ".join(sorted(versions)),
    }


def diff_packages(old: Any, new: Any) -> dict[str, list[dict]]:
    before, after = _package_versions(old), _package_versions(new)
    changed = [
        {
            "manager": key[0],
            "name": key[1],
            "architecture": key[2],
            "old_version": ", ".join(sorted(before[key])),
            "new_version": ", ".join(sorted(after[key])),
        }
        for key in _sorted(before.keys() & after.keys())
        if before[key] != after[key]
    ]
    return {
        "added": [_package(key, after[key]) for key in _sorted(after.keys() - before.keys())],
        "removed": [_package(key, before[key]) for key in _sorted(before.keys() - after.keys())],
        "changed": changed,
    }


# --- Findings, vulnerabilities, controls ------------------------------------------------------


def diff_findings(old_result: Any, new_result: Any) -> list[dict]:
    """Checks whose status differs (a check present on one side only counts as a change)."""
    before = {f.get("check"): f for f in _items(old_result, "findings") if f.get("check")}
    after = {f.get("check"): f for f in _items(new_result, "findings") if f.get("check")}
    changes = []
    for check in _sorted(before.keys() | after.keys()):
        old_status = _get(before.get(check), "status")
        new_status = _get(after.get(check), "status")
        if old_status == new_status:
            continue
        current = after.get(check) or before.get(check)
        changes.append(
            {
                "check": check,
                "control": current.get("control"),
                "title": current.get("title") or "",
                "old_status": old_status,
                "new_status": new_status,
            }
        )
    return changes


def _vulnerability_key(item: Mapping) -> tuple[str, str]:
    return (str(item.get("package") or ""), str(item.get("advisory") or ""))


def diff_vulnerabilities(old_result: Any, new_result: Any) -> dict[str, list[dict]]:
    before = {_vulnerability_key(v): v for v in _items(old_result, "vulnerabilities")}
    after = {_vulnerability_key(v): v for v in _items(new_result, "vulnerabilities")}
    return {
        "new": [dict(after[key]) for key in _sorted(after.keys() - before.keys())],
        "resolved": [dict(before[key]) for key in _sorted(before.keys() - after.keys())],
    }


def diff_controls(old_result: Any, new_result: Any) -> list[dict]:
    changes = []
    for control in FIVE_CONTROLS:
        old_verdict = _get(old_result, "controls", control)
        new_verdict = _get(new_result, "controls", control)
        if old_verdict != new_verdict:
            changes.append({"control": control, "old": old_verdict, "new": new_verdict})
    return changes


# --- Network exposure and administrators ---------------------------------------------------------


def _sockets(evidence: Any) -> set[tuple]:
    return {
        (str(s.get("protocol") or ""), str(s.get("address") or ""), s.get("port"))
        for s in _items(evidence, "listening", "sockets")
        if isinstance(s.get("port"), int | str)
    }


def _socket(key: tuple) -> dict:
    return {"protocol": key[0], "address": key[1], "port": key[2]}


def _allowed(evidence: Any) -> set[tuple]:
    return {
        (a.get("port"), str(a.get("protocol") or ""), str(a.get("source") or ""))
        for a in _items(evidence, "firewall", "allowed_inbound")
        if isinstance(a.get("port"), int | str)
    }


def _rule(key: tuple) -> dict:
    return {"port": key[0], "protocol": key[1], "source": key[2]}


def _backends(evidence: Any) -> dict[str, Any]:
    return {
        str(b.get("name")): b.get("active")
        for b in _items(evidence, "firewall", "backends")
        if b.get("name")
    }


def diff_network(old: Any, new: Any) -> dict[str, Any]:
    before_sockets, after_sockets = _sockets(old), _sockets(new)
    before_rules, after_rules = _allowed(old), _allowed(new)
    before_backends, after_backends = _backends(old), _backends(new)
    old_default = _get(old, "firewall", "default_inbound")
    new_default = _get(new, "firewall", "default_inbound")
    return {
        "listening_opened": [_socket(k) for k in _sorted(after_sockets - before_sockets)],
        "listening_closed": [_socket(k) for k in _sorted(before_sockets - after_sockets)],
        "default_inbound": {"old": old_default, "new": new_default}
        if old_default != new_default
        else None,
        "allowed_added": [_rule(k) for k in _sorted(after_rules - before_rules)],
        "allowed_removed": [_rule(k) for k in _sorted(before_rules - after_rules)],
        "backends": [
            {"name": name, "old": before_backends.get(name), "new": after_backends.get(name)}
            for name in _sorted(before_backends.keys() | after_backends.keys())
            if before_backends.get(name) != after_backends.get(name)
        ],
    }


def _set_change(before: set[str], after: set[str]) -> dict[str, list[str]]:
    return {"added": sorted(after - before), "removed": sorted(before - after)}


def _nopasswd(evidence: Any) -> set[str]:
    return {
        str(rule.get("principal"))
        for rule in _items(evidence, "privileges", "nopasswd")
        if rule.get("principal")
    }


def diff_access(old: Any, new: Any) -> dict[str, dict[str, list[str]]]:
    return {
        "administrators": _set_change(
            _strings(old, "privileges", "administrators"),
            _strings(new, "privileges", "administrators"),
        ),
        "nopasswd": _set_change(_nopasswd(old), _nopasswd(new)),
        "uid0_besides_root": _set_change(
            _strings(old, "accounts", "uid0_besides_root"),
            _strings(new, "accounts", "uid0_besides_root"),
        ),
        "empty_password": _set_change(
            _strings(old, "accounts", "empty_password"),
            _strings(new, "accounts", "empty_password"),
        ),
    }


def diff_settings(old: Any, new: Any) -> dict[str, Any]:
    """Operating system, SSH server settings and enabled services."""
    before_ssh = _get(old, "ssh", "settings")
    after_ssh = _get(new, "ssh", "settings")
    before_ssh = before_ssh if isinstance(before_ssh, Mapping) else {}
    after_ssh = after_ssh if isinstance(after_ssh, Mapping) else {}
    os_changes = [
        {"field": field, "old": _get(old, *path), "new": _get(new, *path)}
        for field, path in (
            ("pretty_name", ("os", "pretty_name")),
            ("kernel", ("os", "kernel", "release")),
        )
        if _get(old, *path) != _get(new, *path)
    ]
    return {
        "os": os_changes,
        "ssh": [
            {"setting": key, "old": before_ssh.get(key), "new": after_ssh.get(key)}
            for key in sorted(str(k) for k in before_ssh.keys() | after_ssh.keys())
            if before_ssh.get(key) != after_ssh.get(key)
        ],
        "services": _set_change(
            _strings(old, "services", "enabled"), _strings(new, "services", "enabled")
        ),
    }


def diff_collections(
    old: Any, new: Any, old_result: Any = None, new_result: Any = None
) -> dict[str, Any]:
    """Everything that changed from the ``old`` collection to the ``new`` one; the results are
    the two collections' evaluations (``mamori.evaluation/1``), when known."""
    return {
        "controls": diff_controls(old_result, new_result),
        "packages": diff_packages(old, new),
        "findings": diff_findings(old_result, new_result),
        "vulnerabilities": diff_vulnerabilities(old_result, new_result),
        "network": diff_network(old, new),
        "access": diff_access(old, new),
        "settings": diff_settings(old, new),
    }


def is_empty(difference: Mapping[str, Any]) -> bool:
    """Whether a diff found no change at all."""

    def empty(value: Any) -> bool:
        if isinstance(value, Mapping):
            return all(empty(item) for item in value.values())
        if isinstance(value, list):
            return not value
        return value is None

    return empty(difference)
