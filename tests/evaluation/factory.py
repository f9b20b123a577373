"""Crafted evidence for the evaluation tests: a host that passes every check, to be mutated.

It follows docs/evidence.md section by section; ``test_evidence_contract`` checks it against the
agent's JSON Schema so that it cannot drift from what the agent really writes.
"""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from tests.datafiles import DEBIAN12_PACKAGES

AS_OF = dt.date(2026, 11, 25)
SETTINGS = {
    "patch_days": 14,
    "cvss_threshold": 7.0,
    "lockout_attempts": 10,
    "password_min_length": 12,
    "password_min_length_with_blocklist": 8,
    "password_min_length_with_mfa": 8,
}


def section(**values: Any) -> dict[str, Any]:
    return {"status": "ok", "errors": [], **values}


def user(
    name: str,
    uid: int,
    *,
    state: str | None = "hash",
    login: str = "/bin/bash",
    scheme: str | None = "yescrypt",
    weak: bool | None = False,
) -> dict[str, Any]:
    can_log_in = not login.endswith(("nologin", "false", "sync"))
    if state != "hash":
        scheme, weak = None, False if state is not None else None
    return {
        "name": name,
        "uid": uid,
        "gid": uid,
        "shell": login,
        "home": "/root" if uid == 0 else f"/home/{name}",
        "login_shell": can_log_in,
        "password": state,
        "hash_scheme": scheme,
        "weak_hash": weak,
    }


def good_host() -> dict[str, Any]:
    """A Debian 12 server that passes every check (with the assessments in ``good_assessment``)."""
    users = [
        user("root", 0, state="locked"),
        user("daemon", 1, state="locked", login="/usr/sbin/nologin"),
        user("sshd", 100, state="locked", login="/usr/sbin/nologin"),
        user("alice", 1000),
        user("bob-admin", 1001),
    ]
    return copy.deepcopy(
        {
            "schema": "mamori.evidence/1",
            "agent": {"name": "mamori-agent", "version": "0.1.0", "python": "3.11.2"},
            "collected_at": "2026-11-25T09:00:00Z",
            "mode": "live",
            "duration_ms": 850,
            "host": {
                "hostname": "web-01",
                "machine_id": "0123456789abcdef0123456789abcdef",
                "architecture": "x86_64",
                "fqdn": "web-01.example.jp",
            },
            "os": section(
                id="debian",
                id_like=[],
                version_id="12",
                version_codename="bookworm",
                name="Debian GNU/Linux",
                pretty_name="Debian GNU/Linux 12 (bookworm)",
                debian_version="12.11",
                alpine_release=None,
                redhat_release=None,
                kernel={
                    "release": "6.1.0-37-amd64",
                    "version": "#1 SMP PREEMPT_DYNAMIC Debian 6.1.140-1",
                },
                installed_kernels=["6.1.0-37-amd64"],
            ),
            "packages": section(
                managers=["dpkg"],
                items=[
                    {
                        "manager": "dpkg",
                        "name": "openssl",
                        "version": "3.0.17-1~deb12u2",
                        "architecture": "amd64",
                        "source_name": "openssl",
                        "source_version": "3.0.17-1~deb12u2",
                    },
                    {
                        "manager": "dpkg",
                        "name": "libssl3",
                        "version": "3.0.17-1~deb12u2",
                        "architecture": "amd64",
                        "source_name": "openssl",
                        "source_version": "3.0.17-1~deb12u2",
                    },
                ],
            ),
            "updates": section(
                unattended_upgrades={
                    "installed": True,
                    "enabled": True,
                    "update_package_lists": True,
                    "origins": ["origin=Debian,codename=${distro_codename},label=Debian-Security"],
                },
                dnf_automatic=None,
                apk_periodic=None,
                apt_sources={
                    "entries": [
                        {
                            "uri": "http://deb.debian.org/debian",
                            "suites": ["bookworm"],
                            "components": ["main"],
                            "file": "/etc/apt/sources.list",
                        }
                    ],
                    "esm": False,
                },
            ),
            "firewall": section(
                backends=[
                    {
                        "name": "nftables",
                        "active": True,
                        "source": "live",
                        "default_inbound": "drop",
                        "allowed_inbound": [
                            {"port": 22, "protocol": "tcp", "source": "192.0.2.0/24"},
                            {"port": 443, "protocol": "tcp", "source": "any"},
                        ],
                        "detail": "table inet filter, chain input policy drop",
                    }
                ],
                default_inbound="drop",
                allowed_inbound=[
                    {"port": 22, "protocol": "tcp", "source": "192.0.2.0/24"},
                    {"port": 443, "protocol": "tcp", "source": "any"},
                ],
            ),
            "listening": section(
                sockets=[
                    {"protocol": "tcp", "address": "0.0.0.0", "port": 22, "inode": 1001},  # noqa: S104
                    {"protocol": "tcp6", "address": "::", "port": 443, "inode": 1002},
                    {"protocol": "tcp", "address": "127.0.0.1", "port": 5432, "inode": 1003},
                ]
            ),
            "services": section(
                enabled=[
                    "cron.service",
                    "nginx.service",
                    "nftables.service",
                    "ssh.service",
                    "unattended-upgrades.service",
                ],
                running=["cron.service", "nginx.service", "ssh.service"],
                masked=[],
                init="systemd",
            ),
            "ssh": section(
                installed=True,
                files=["/etc/ssh/sshd_config", "/etc/ssh/sshd_config.d/50-hardening.conf"],
                settings={
                    "permitrootlogin": "no",
                    "passwordauthentication": "no",
                    "kbdinteractiveauthentication": "no",
                    "usepam": "yes",
                    "x11forwarding": "yes",
                },
                match_blocks=0,
                matches=[],
            ),
            "accounts": section(
                users=users,
                uid0_besides_root=[],
                empty_password=[],
                weak_hash=[],
                locked=["root", "daemon", "sshd"],
            ),
            "privileges": section(
                sudoers_files=["/etc/sudoers"],
                rules=[
                    {
                        "principal": "%sudo",
                        "hosts": ["ALL"],
                        "runas": "(ALL:ALL)",
                        "commands": ["ALL"],
                        "nopasswd": False,
                        "file": "/etc/sudoers",
                        "line": 50,
                    }
                ],
                administrators=["bob-admin"],
                nopasswd=[],
                admin_groups={"sudo": ["bob-admin"]},
            ),
            "authentication": section(
                faillock={
                    "configured": True,
                    "deny": 5,
                    "unlock_time": 900,
                    "fail_interval": 900,
                    "source": "/etc/security/faillock.conf",
                    "defaults_applied": [],
                },
                tally2={"configured": False, "deny": None, "source": None},
                pwquality={
                    "configured": True,
                    "minlen": 12,
                    "dictcheck": True,
                    "enforce_for_root": True,
                    "source": "/etc/security/pwquality.conf",
                    "defaults_applied": [],
                },
                login_defs={"pass_min_len": None, "encrypt_method": "YESCRYPT"},
            ),
            "malware": section(
                clamav={
                    "installed": True,
                    "databases": [
                        {"name": "daily", "version": 27833, "built": "2026-11-24T08:20:00Z"},
                        {"name": "main", "version": 62, "built": "2021-09-16T15:25:00Z"},
                    ],
                    "newest_signature": "2026-11-24T08:20:00Z",
                    "freshclam_enabled": True,
                    "clamd_enabled": True,
                    "on_access": True,
                },
                fapolicyd={"installed": False, "enabled": False, "permissive": None},
                edr=[],
            ),
            "backups": section(
                tools=["restic"],
                timers=[
                    {"kind": "systemd-timer", "source": "restic-backup.timer", "tool": "restic"}
                ],
            ),
        }
    )


def good_assessment() -> dict[str, Any]:
    """What ``assess_evidence`` returns for ``good_host``: nothing missing, Debian 12 on LTS."""
    return {
        "vulnerabilities": [],
        "os_support": {
            "product": "debian",
            "cycle": "12",
            "supported": True,
            "support_ends": "2028-06-30",
            "basis": "lts",
            "source": "distro-info",
            "reason": None,
        },
        "software_support": [],
    }


def vulnerability(**overrides: Any) -> dict[str, Any]:
    item = {
        "package": "openssl",
        "installed_version": "3.0.11-1~deb12u2",
        "advisory": "MAMORI-DEB12-CVE-2024-0727-openssl",
        "aliases": ["CVE-2024-0727"],
        "fixed_version": "3.0.13-1~deb12u1",
        "severity": "medium",
        "cvss": 5.5,
        "kev": False,
        "fix_published": "2024-02-01",
        "days_since_fix": 1028,
        "overdue": False,
        "binaries": ["libssl3", "openssl"],
        "ecosystem": "Debian:12",
    }
    item.update(overrides)
    return item


def debian12_host(lowered: dict[str, str] | None = None) -> dict[str, Any]:
    """``good_host`` with the 712 real packages of the Debian 12 snapshot host (binary → source
    map from dpkg-query), with the source versions in ``lowered`` ({source: version}) put back
    to before a fix, as an unpatched host would have them."""
    evidence = good_host()
    items = []
    with DEBIAN12_PACKAGES.open(encoding="utf-8") as handle:
        next(handle)
        for line in handle:
            name, source, source_version, version, architecture, _status = line.rstrip("\n").split(
                "\t"
            )
            source_version = (lowered or {}).get(source, source_version)
            if source in (lowered or {}) and version != source_version:
                version = source_version
            items.append(
                {
                    "manager": "dpkg",
                    "name": name,
                    "version": version,
                    "architecture": architecture,
                    "source_name": source,
                    "source_version": source_version,
                }
            )
    evidence["packages"]["items"] = items
    return evidence
