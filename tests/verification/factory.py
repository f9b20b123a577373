"""Evidence documents for the tests, built from real data.

``debian12_evidence`` turns the real Debian 12 host in tests/data/hosts (its dpkg status
and os-release) into a ``mamori.evidence/1`` document shaped as docs/evidence.md describes, with
a well-configured host around it (firewall dropping inbound except SSH, SSH keys only, faillock,
pwquality, unattended-upgrades, ClamAV). Tests change what they need on a copy.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.datafiles import DEBIAN12_OS_RELEASE, DEBIAN12_STATUS, DEBIAN12_VERSION

REPO = Path(__file__).resolve().parents[2]


def _paragraphs(text: str):
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t"):
                if key:
                    fields[key] += "\n" + line.strip()
                continue
            if ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if fields:
            yield fields


@functools.cache
def _dpkg_items() -> tuple[dict, ...]:
    items = []
    for fields in _paragraphs(DEBIAN12_STATUS.read_text("utf-8")):
        status = fields.get("Status", "")
        if not status.endswith(" ok installed"):
            continue
        name, version = fields["Package"], fields["Version"]
        source_name, source_version = name, version
        if "Source" in fields:
            source = fields["Source"]
            if "(" in source:
                source_name, _, rest = source.partition(" (")
                source_version = rest.rstrip(")")
            else:
                source_name = source
        items.append(
            {
                "manager": "dpkg",
                "name": name,
                "version": version,
                "architecture": fields.get("Architecture"),
                "source_name": source_name.strip(),
                "source_version": source_version,
            }
        )
    return tuple(items)


def _os_release() -> dict[str, str]:
    values = {}
    for line in DEBIAN12_OS_RELEASE.read_text("utf-8").splitlines():
        if "=" in line:
            key, _, value = line.partition("=")
            values[key] = value.strip().strip('"')
    return values


def _section(**fields) -> dict:
    return {"status": "ok", "errors": [], **fields}


def debian12_evidence(
    *,
    hostname: str = "web-01",
    machine_id: str | None = "0123456789abcdef0123456789abcdef",
    collected_at: dt.datetime | None = None,
) -> dict:
    """A complete, well-configured Debian 12 host with the real package list."""
    os_release = _os_release()
    collected_at = collected_at or dt.datetime.now(dt.UTC).replace(microsecond=0)
    return {
        "schema": "mamori.evidence/1",
        "agent": {"name": "mamori-agent", "version": "0.1.0", "python": "3.11.2"},
        "collected_at": collected_at.isoformat().replace("+00:00", "Z"),
        "mode": "live",
        "duration_ms": 812,
        "host": {
            "hostname": hostname,
            "machine_id": machine_id,
            "architecture": "x86_64",
            "fqdn": f"{hostname}.example.jp",
        },
        "os": _section(
            id=os_release["ID"],
            id_like=[],
            version_id=os_release["VERSION_ID"],
            version_codename=os_release["VERSION_CODENAME"],
            name=os_release["NAME"],
            pretty_name=os_release["PRETTY_NAME"],
            debian_version=DEBIAN12_VERSION.read_text().strip(),
            alpine_release=None,
            redhat_release=None,
            kernel={"release": "6.1.0-40-amd64", "version": "#1 SMP PREEMPT_DYNAMIC Debian"},
            installed_kernels=["6.1.0-40-amd64"],
        ),
        "packages": _section(managers=["dpkg"], items=[dict(item) for item in _dpkg_items()]),
        "updates": _section(
            unattended_upgrades={
                "installed": True,
                "enabled": True,
                "update_package_lists": True,
                "origins": ["origin=Debian,codename=${distro_codename}-security"],
            },
            dnf_automatic=None,
            apk_periodic=None,
            apt_sources={
                "entries": [
                    {
                        "uri": "http://deb.debian.org/debian-security",
                        "suites": ["bookworm-security"],
                        "components": ["main"],
                        "file": "/etc/apt/sources.list",
                    }
                ],
                "esm": False,
            },
        ),
        "firewall": _section(
            backends=[
                {
                    "name": "nftables",
                    "active": True,
                    "source": "live",
                    "default_inbound": "drop",
                    "allowed_inbound": [{"port": 22, "protocol": "tcp", "source": "10.0.0.0/8"}],
                    "detail": "table inet filter: input policy drop",
                }
            ],
            default_inbound="drop",
            allowed_inbound=[{"port": 22, "protocol": "tcp", "source": "10.0.0.0/8"}],
        ),
        "listening": _section(
            sockets=[
                {"protocol": "tcp", "address": "0.0.0.0", "port": 22, "inode": 1001},  # noqa: S104
                {"protocol": "tcp", "address": "127.0.0.1", "port": 5432, "inode": 1002},
            ]
        ),
        "services": _section(
            enabled=["cron.service", "nftables.service", "ssh.service"],
            masked=[],
            running=["cron.service", "ssh.service"],
            init="systemd",
        ),
        "ssh": _section(
            installed=True,
            files=["/etc/ssh/sshd_config"],
            settings={
                "permitrootlogin": "no",
                "passwordauthentication": "no",
                "permitemptypasswords": "no",
                "pubkeyauthentication": "yes",
                "maxauthtries": 3,
                "port": [22],
            },
            match_blocks=0,
            matches=[],
        ),
        "accounts": _section(
            users=[
                {
                    "name": "root",
                    "uid": 0,
                    "gid": 0,
                    "shell": "/bin/bash",
                    "home": "/root",
                    "login_shell": True,
                    "password": "locked",
                    "hash_scheme": None,
                    "weak_hash": False,
                },
                {
                    "name": "admin",
                    "uid": 1000,
                    "gid": 1000,
                    "shell": "/bin/bash",
                    "home": "/home/admin",
                    "login_shell": True,
                    "password": "hash",
                    "hash_scheme": "yescrypt",
                    "weak_hash": False,
                },
            ],
            uid0_besides_root=[],
            empty_password=[],
            weak_hash=[],
            locked=["root"],
        ),
        "privileges": _section(
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
            administrators=["admin", "root"],
            nopasswd=[],
            admin_groups={"sudo": ["admin"]},
        ),
        "authentication": _section(
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
            login_defs={"pass_min_len": 12, "encrypt_method": "YESCRYPT"},
        ),
        "malware": _section(
            clamav={
                "installed": True,
                "databases": [
                    {
                        "name": "daily",
                        "version": 27830,
                        "built": collected_at.isoformat().replace("+00:00", "Z"),
                    }
                ],
                "newest_signature": collected_at.isoformat().replace("+00:00", "Z"),
                "freshclam_enabled": True,
                "clamd_enabled": True,
                "on_access": True,
            },
            fapolicyd={"installed": False, "enabled": False, "permissive": None},
            edr=[],
        ),
        "backups": _section(
            tools=["restic"],
            timers=[{"kind": "systemd-timer", "source": "restic-backup.timer", "tool": "restic"}],
        ),
    }


def with_source_version(evidence: dict, source: str, version: str) -> dict:
    """A copy where every binary of ``source`` reports an older (or newer) source version."""
    changed = copy.deepcopy(evidence)
    for item in changed["packages"]["items"]:
        if item["source_name"] == source:
            item["source_version"] = version
            item["version"] = version
    return changed


@functools.cache
def _agent_output() -> str:
    """This machine's real evidence, collected once per test run by the agent itself."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    completed = subprocess.run(
        [sys.executable, "-m", "mamori_agent", "collect"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout


def agent_evidence() -> dict:
    return json.loads(_agent_output())
