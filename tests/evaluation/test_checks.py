"""Every bundled check on crafted evidence: one row per check and outcome.

Each row starts from ``factory.good_host()`` (which passes everything), applies one change to the
evidence and/or to what vulnerability matching and life-cycle data report, and states the
status the check must get (``n/a`` when its ``applies_when`` is false).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from mamori.verification.evaluation import bundled_checks, control_verdicts, evaluate
from mamori.verification.evidence import EvidenceError, validate_evidence

from .factory import AS_OF, SETTINGS, good_assessment, good_host, user, vulnerability

SCHEMA = json.loads(
    (
        Path(__file__).resolve().parents[2]
        / "src/mamori/verification/schemas/evaluation.schema.json"
    ).read_text(encoding="utf-8")
)
VALIDATOR = jsonschema.Draft202012Validator(
    SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
)


def run(
    change: Callable[[dict], Any] | None = None,
    *,
    settings: dict | None = None,
    language: str = "en",
    **assessment: Any,
) -> dict:
    evidence = good_host()
    if change is not None:
        change(evidence)
    values = {**good_assessment(), **assessment}
    result = evaluate(
        evidence,
        as_of=AS_OF,
        settings={**SETTINGS, **(settings or {})},
        language=language,
        **values,
    )
    VALIDATOR.validate(result)
    return result


def finding(result: dict, check: str) -> dict | None:
    found = [item for item in result["findings"] if item["check"] == check]
    assert len(found) <= 1
    if not found:
        assert check in result["not_applicable"]
        return None
    return found[0]


def setter(path: str, value: Any) -> Callable[[dict], None]:
    """Set ``value`` at a dotted path of the evidence (``firewall.backends.0.active``)."""

    def change(evidence: dict) -> None:
        *parents, last = path.split(".")
        target: Any = evidence
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return change


def both(*changes: Callable[[dict], None]) -> Callable[[dict], None]:
    def change(evidence: dict) -> None:
        for item in changes:
            item(evidence)

    return change


def add_user(**fields: Any) -> Callable[[dict], None]:
    def change(evidence: dict) -> None:
        evidence["accounts"]["users"].append(user(**fields))

    return change


def exposed(port: int, protocol: str = "tcp", source: str = "any") -> Callable[[dict], None]:
    def change(evidence: dict) -> None:
        evidence["listening"]["sockets"].append(
            {"protocol": protocol, "address": ANY_ADDRESS, "port": port, "inode": 9}
        )
        rule = {"port": port, "protocol": protocol.rstrip("6"), "source": source}
        evidence["firewall"]["allowed_inbound"].append(rule)
        evidence["firewall"]["backends"][0]["allowed_inbound"].append(rule)

    return change


def sudo_rule(
    principal: str,
    commands: list[str],
    *,
    nopasswd: list[str],
    file: str = "/etc/sudoers.d/90-cloud-init-users",
    line: int = 2,
) -> Callable[[dict], None]:
    """A sudoers rule as the agent reports it: in ``rules``, and in ``nopasswd`` with the
    commands that carry the NOPASSWD tag."""

    def change(evidence: dict) -> None:
        where = {"file": file, "line": line}
        evidence["privileges"]["rules"].append(
            {
                "principal": principal,
                "hosts": ["ALL"],
                "runas": "(ALL)",
                "commands": commands,
                "nopasswd": bool(nopasswd),
                **where,
            }
        )
        if nopasswd:
            evidence["privileges"]["nopasswd"].append(
                {"principal": principal, "commands": nopasswd, **where}
            )

    return change


def match_block(**settings: Any) -> Callable[[dict], None]:
    def change(evidence: dict) -> None:
        evidence["ssh"]["matches"].append(
            {
                "criteria": "Address 10.0.0.0/8",
                "file": "/etc/ssh/sshd_config",
                "line": 120,
                "settings": settings,
            }
        )
        evidence["ssh"]["match_blocks"] = len(evidence["ssh"]["matches"])

    return change


def no_firewall(evidence: dict) -> None:
    evidence["firewall"]["backends"] = [
        {
            "name": "nftables",
            "active": False,
            "source": "live",
            "default_inbound": None,
            "allowed_inbound": [],
            "detail": "no ruleset loaded",
        }
    ]
    evidence["firewall"]["default_inbound"] = None
    evidence["firewall"]["allowed_inbound"] = []


def section_unknown(name: str) -> Callable[[dict], None]:
    def change(evidence: dict) -> None:
        # As the agent writes a section that failed entirely: only status and errors.
        evidence[name] = {
            "status": "unknown",
            "errors": [{"path": f"/{name}", "reason": "permission denied"}],
        }

    return change


def rpm_host(evidence: dict) -> None:
    evidence["os"].update(id="rocky", version_id="9.4", pretty_name="Rocky Linux 9.4 (Blue Onyx)")
    evidence["packages"]["managers"] = ["rpm"]
    for item in evidence["packages"]["items"]:
        item["manager"] = "rpm"
    evidence["updates"].update(
        unattended_upgrades=None,
        apt_sources=None,
        dnf_automatic={
            "installed": True,
            "apply_updates": True,
            "upgrade_type": "security",
            "timer_enabled": True,
        },
    )


def apk_host(evidence: dict) -> None:
    evidence["os"].update(id="alpine", version_id="3.20.3", pretty_name="Alpine Linux v3.20")
    evidence["packages"]["managers"] = ["apk"]
    for item in evidence["packages"]["items"]:
        item["manager"] = "apk"
    evidence["updates"].update(
        unattended_upgrades=None,
        apt_sources=None,
        apk_periodic={"source": "/etc/periodic/daily/apk-upgrade"},
    )


def nothing_against_malware(evidence: dict) -> None:
    evidence["malware"]["clamav"] = {
        "installed": False,
        "databases": [],
        "newest_signature": None,
        "freshclam_enabled": False,
        "clamd_enabled": False,
        "on_access": False,
    }


def signature_age(stamp: str) -> Callable[[dict], None]:
    return both(
        setter("malware.clamav.newest_signature", stamp),
        setter("malware.clamav.databases.0.built", stamp),
    )


def django(supported: bool | None) -> list[dict]:
    return [
        {
            "package": "django",
            "version": "3.2.25",
            "product": "django",
            "cycle": "3.2",
            "eol": "2024-04-01",
            "supported": supported,
        }
    ]


ANY_ADDRESS = "0.0.0.0"  # noqa: S104 - a socket address in evidence, nothing binds here
OVERDUE = vulnerability(severity="high", cvss=7.5, overdue=True)
PASSWORD_SSH = setter("ssh.settings.passwordauthentication", "yes")

ROWS: list[tuple[str, str, Callable | None, dict, str]] = [
    # check, case, change to the evidence, assessment/settings overrides, expected
    ("FW-01", "default drop", None, {}, "pass"),
    (
        "FW-01",
        "reject counts as deny",
        setter("firewall.backends.0.default_inbound", "reject"),
        {},
        "pass",
    ),
    ("FW-01", "default accept", setter("firewall.default_inbound", "accept"), {}, "fail"),
    ("FW-01", "no firewall active", no_firewall, {}, "fail"),
    (
        "FW-01",
        "no backend at all",
        both(setter("firewall.backends", []), setter("firewall.default_inbound", None)),
        {},
        "fail",
    ),
    ("FW-01", "section unreadable", section_unknown("firewall"), {}, "unknown"),
    (
        "FW-01",
        "activity not established",
        both(setter("firewall.backends.0.active", None), setter("firewall.default_inbound", None)),
        {},
        "unknown",
    ),
    ("FW-02", "informational", None, {}, "info"),
    ("FW-03", "only https exposed", None, {}, "pass"),
    ("FW-03", "telnet open to any", exposed(23), {}, "fail"),
    ("FW-03", "tftp over udp6", exposed(69, "udp6"), {}, "fail"),
    (
        "FW-03",
        "telnet allowed from one network only",
        exposed(23, source="192.0.2.0/24"),
        {},
        "pass",
    ),
    (
        "FW-03",
        "telnet on loopback",
        lambda e: e["listening"]["sockets"].append(
            {"protocol": "tcp", "address": "127.0.0.1", "port": 23, "inode": 7}
        ),
        {},
        "pass",
    ),
    (
        "FW-03",
        "ftp inside an allowed range",
        both(
            lambda e: e["listening"]["sockets"].append(
                {"protocol": "tcp", "address": "::", "port": 21, "inode": 7}
            ),
            lambda e: e["firewall"]["allowed_inbound"].append(
                {"port": "20-25", "protocol": "tcp", "source": "any"}
            ),
        ),
        {},
        "fail",
    ),
    (
        "FW-03",
        "rsh with no firewall",
        both(
            no_firewall,
            lambda e: e["listening"]["sockets"].append(
                {"protocol": "tcp", "address": ANY_ADDRESS, "port": 514, "inode": 7}
            ),
        ),
        {},
        "fail",
    ),
    ("FW-03", "sockets unreadable", section_unknown("listening"), {}, "unknown"),
    ("FW-03", "firewall unreadable", section_unknown("firewall"), {}, "unknown"),
    ("SC-01", "ordinary services", None, {}, "pass"),
    (
        "SC-01",
        "telnet socket enabled",
        lambda e: e["services"]["enabled"].append("telnet.socket"),
        {},
        "fail",
    ),
    ("SC-01", "xinetd on OpenRC", lambda e: e["services"]["enabled"].append("xinetd"), {}, "fail"),
    ("SC-01", "services unreadable", section_unknown("services"), {}, "unknown"),
    ("SC-02", "no empty password", None, {}, "pass"),
    ("SC-02", "an empty password", add_user(name="guest", uid=1002, state="empty"), {}, "fail"),
    (
        "SC-02",
        "shadow unreadable",
        lambda e: [u.update(password=None) for u in e["accounts"]["users"]],
        {},
        "unknown",
    ),
    ("SC-03", "set to no", setter("ssh.settings.permitemptypasswords", "no"), {}, "pass"),
    ("SC-03", "absent: sshd default no", None, {}, "pass"),
    ("SC-03", "set to yes", setter("ssh.settings.permitemptypasswords", "yes"), {}, "fail"),
    ("SC-03", "ssh section unreadable", section_unknown("ssh"), {}, "unknown"),
    ("SC-03", "yes in a Match block", match_block(permitemptypasswords="yes"), {}, "fail"),
    ("SC-03", "no sshd", setter("ssh.installed", False), {}, "n/a"),
    ("UAC-01", "only root", None, {}, "pass"),
    ("UAC-01", "toor has uid 0", add_user(name="toor", uid=0), {}, "fail"),
    ("UAC-01", "accounts unreadable", section_unknown("accounts"), {}, "unknown"),
    ("UAC-02", "PermitRootLogin no", None, {}, "pass"),
    (
        "UAC-02",
        "yes but no password login",
        setter("ssh.settings.permitrootlogin", "yes"),
        {},
        "pass",
    ),
    (
        "UAC-02",
        "yes with passwords",
        both(setter("ssh.settings.permitrootlogin", "yes"), PASSWORD_SSH),
        {},
        "fail",
    ),
    (
        "UAC-02",
        "yes with PAM keyboard-interactive",
        both(
            setter("ssh.settings.permitrootlogin", "yes"),
            setter("ssh.settings.kbdinteractiveauthentication", "yes"),
        ),
        {},
        "fail",
    ),
    (
        "UAC-02",
        "yes, passwords, but publickey only",
        both(
            setter("ssh.settings.permitrootlogin", "yes"),
            PASSWORD_SSH,
            setter("ssh.settings.authenticationmethods", "publickey"),
        ),
        {},
        "pass",
    ),
    (
        "UAC-02",
        "absent: default prohibit-password",
        both(lambda e: e["ssh"]["settings"].pop("permitrootlogin"), PASSWORD_SSH),
        {},
        "pass",
    ),
    ("UAC-02", "ssh section unreadable", section_unknown("ssh"), {}, "unknown"),
    (
        "UAC-02",
        "a Match block lets root in with a password",
        match_block(permitrootlogin="yes", passwordauthentication="yes"),
        {},
        "fail",
    ),
    (
        "UAC-02",
        "a Match block allows root, passwords off",
        match_block(permitrootlogin="yes"),
        {},
        "pass",
    ),
    (
        "UAC-02",
        "Match blocks not detailed",
        both(setter("ssh.match_blocks", 2), lambda e: e["ssh"].pop("matches")),
        {},
        "unknown",
    ),
    ("UAC-02", "no sshd", setter("ssh.installed", False), {}, "n/a"),
    ("UAC-03", "password auth off", setter("ssh.settings.maxauthtries", 50), {}, "pass"),
    ("UAC-03", "passwords, default tries", PASSWORD_SSH, {}, "pass"),
    (
        "UAC-03",
        "passwords, 10 tries",
        both(PASSWORD_SSH, setter("ssh.settings.maxauthtries", 10)),
        {},
        "pass",
    ),
    (
        "UAC-03",
        "passwords, 11 tries",
        both(PASSWORD_SSH, setter("ssh.settings.maxauthtries", 11)),
        {},
        "fail",
    ),
    (
        "UAC-03",
        "stricter catalogue",
        both(PASSWORD_SSH, setter("ssh.settings.maxauthtries", 6)),
        {"settings": {"lockout_attempts": 5}},
        "fail",
    ),
    (
        "UAC-03",
        "passwords for one network, 20 tries there",
        match_block(passwordauthentication="yes", maxauthtries=20),
        {},
        "fail",
    ),
    (
        "UAC-03",
        "unparsable tries",
        both(PASSWORD_SSH, setter("ssh.settings.maxauthtries", "lots")),
        {},
        "unknown",
    ),
    ("UAC-03", "no sshd", setter("ssh.installed", False), {}, "n/a"),
    ("UAC-04", "faillock deny 5", None, {}, "pass"),
    ("UAC-04", "faillock deny 10", setter("authentication.faillock.deny", 10), {}, "pass"),
    ("UAC-04", "faillock deny 11", setter("authentication.faillock.deny", 11), {}, "fail"),
    ("UAC-04", "deny 0 never locks", setter("authentication.faillock.deny", 0), {}, "fail"),
    (
        "UAC-04",
        "no lockout module",
        setter("authentication.faillock.configured", False),
        {},
        "fail",
    ),
    (
        "UAC-04",
        "tally2 instead",
        both(
            setter("authentication.faillock.configured", False),
            setter(
                "authentication.tally2",
                {"configured": True, "deny": 3, "source": "/etc/pam.d/common-auth"},
            ),
        ),
        {},
        "pass",
    ),
    ("UAC-04", "deny not established", setter("authentication.faillock.deny", None), {}, "unknown"),
    (
        "UAC-04",
        "no account logs in with a password",
        lambda e: [u.update(password="locked") for u in e["accounts"]["users"]],
        {},
        "n/a",
    ),
    (
        "UAC-04",
        "shadow unreadable",
        both(
            setter("authentication.faillock.configured", False),
            lambda e: [u.update(password=None) for u in e["accounts"]["users"]],
        ),
        {},
        "unknown",
    ),
    ("UAC-05", "minlen 12", None, {}, "pass"),
    (
        "UAC-05",
        "minlen 8 with dictionary check",
        setter("authentication.pwquality.minlen", 8),
        {},
        "pass",
    ),
    (
        "UAC-05",
        "minlen 8 without dictionary check",
        both(
            setter("authentication.pwquality.minlen", 8),
            setter("authentication.pwquality.dictcheck", False),
        ),
        {},
        "fail",
    ),
    (
        "UAC-05",
        "minlen 12 without dictionary check",
        setter("authentication.pwquality.dictcheck", False),
        {},
        "pass",
    ),
    ("UAC-05", "minlen 7", setter("authentication.pwquality.minlen", 7), {}, "fail"),
    ("UAC-05", "not configured", setter("authentication.pwquality.configured", False), {}, "fail"),
    ("UAC-05", "authentication unreadable", section_unknown("authentication"), {}, "unknown"),
    (
        "UAC-05",
        "no account logs in with a password",
        lambda e: [u.update(password="locked") for u in e["accounts"]["users"]],
        {},
        "n/a",
    ),
    ("UAC-06", "yescrypt", None, {}, "pass"),
    ("UAC-06", "md5", add_user(name="legacy", uid=1003, scheme="md5", weak=True), {}, "fail"),
    ("UAC-06", "weak but locked", add_user(name="old", uid=1004, state="locked"), {}, "pass"),
    (
        "UAC-06",
        "weakness not established",
        add_user(name="odd", uid=1005, weak=None),
        {},
        "unknown",
    ),
    ("UAC-07", "sudo with password", None, {}, "pass"),
    ("UAC-07", "NOPASSWD: ALL", sudo_rule("deploy", ["ALL"], nopasswd=["ALL"]), {}, "fail"),
    (
        "UAC-07",
        "NOPASSWD for one command",
        sudo_rule("backup", ["/usr/bin/restic"], nopasswd=["/usr/bin/restic"]),
        {},
        "pass",
    ),
    (
        "UAC-07",
        "ALL with a password, one command without",
        sudo_rule("ops", ["ALL", "/usr/bin/systemctl"], nopasswd=["/usr/bin/systemctl"]),
        {},
        "pass",
    ),
    (
        "UAC-07",
        "Defaults !authenticate",
        lambda e: e["privileges"]["nopasswd"].append(
            {"principal": "ALL", "file": "/etc/sudoers", "line": 9, "commands": ["ALL"]}
        ),
        {},
        "fail",
    ),
    ("UAC-07", "sudoers unreadable", section_unknown("privileges"), {}, "unknown"),
    ("UAC-08", "informational", None, {}, "info"),
    ("UPD-01", "unattended-upgrades on", None, {}, "pass"),
    (
        "UPD-01",
        "unattended-upgrades off",
        setter("updates.unattended_upgrades.enabled", False),
        {},
        "fail",
    ),
    (
        "UPD-01",
        "lists not refreshed",
        setter("updates.unattended_upgrades.update_package_lists", False),
        {},
        "fail",
    ),
    ("UPD-01", "not installed", setter("updates.unattended_upgrades.installed", False), {}, "fail"),
    (
        "UPD-01",
        "setting not established",
        setter("updates.unattended_upgrades.enabled", None),
        {},
        "unknown",
    ),
    ("UPD-01", "updates unreadable", section_unknown("updates"), {}, "unknown"),
    ("UPD-01", "not a dpkg host", rpm_host, {}, "n/a"),
    ("UPD-06", "dnf-automatic applies updates", rpm_host, {}, "pass"),
    (
        "UPD-06",
        "dnf-automatic only downloads",
        both(rpm_host, setter("updates.dnf_automatic.apply_updates", False)),
        {},
        "fail",
    ),
    (
        "UPD-06",
        "updates unreadable",
        both(rpm_host, section_unknown("updates")),
        {},
        "unknown",
    ),
    ("UPD-06", "a dpkg host", None, {}, "n/a"),
    (
        "UPD-06",
        "SUSE uses zypper, not dnf",
        both(rpm_host, setter("os.id", "sles"), setter("os.id_like", ["suse"])),
        {},
        "n/a",
    ),
    (
        "UPD-06",
        "RHEL-like by ID_LIKE",
        both(rpm_host, setter("os.id", "oddlinux"), setter("os.id_like", ["rhel", "centos"])),
        {},
        "pass",
    ),
    ("UPD-07", "apk upgrade in periodic", apk_host, {}, "pass"),
    (
        "UPD-07",
        "no periodic upgrade",
        both(apk_host, setter("updates.apk_periodic", None)),
        {},
        "fail",
    ),
    ("UPD-07", "updates unreadable", both(apk_host, section_unknown("updates")), {}, "unknown"),
    ("UPD-07", "a dpkg host", None, {}, "n/a"),
    ("UPD-02", "Debian 12 on LTS", None, {}, "pass"),
    (
        "UPD-02",
        "ended",
        None,
        {
            "os_support": {
                "product": "debian",
                "cycle": "10",
                "supported": False,
                "support_ends": "2024-06-30",
                "basis": None,
                "source": "distro-info",
                "reason": "ended",
            }
        },
        "fail",
    ),
    ("UPD-02", "not assessed", None, {"os_support": None}, "unknown"),
    (
        "UPD-02",
        "cycle not found",
        None,
        {
            "os_support": {
                "product": "debian",
                "cycle": "14",
                "supported": None,
                "support_ends": None,
                "basis": None,
                "source": None,
                "reason": "cycle_not_found",
            }
        },
        "unknown",
    ),
    ("UPD-03", "nothing missing", None, {}, "pass"),
    ("UPD-03", "missing fix not overdue", None, {"vulnerabilities": [vulnerability()]}, "pass"),
    ("UPD-03", "overdue fix", None, {"vulnerabilities": [OVERDUE]}, "fail"),
    ("UPD-03", "not matched", None, {"vulnerabilities": None}, "unknown"),
    (
        "UPD-03",
        "advisories do not cover the release",
        None,
        {"vulnerabilities_complete": False},
        "unknown",
    ),
    (
        "UPD-03",
        "overdue even with gaps",
        None,
        {"vulnerabilities": [OVERDUE], "vulnerabilities_complete": False},
        "fail",
    ),
    ("UPD-03", "package list partial", setter("packages.status", "partial"), {}, "unknown"),
    ("UPD-03", "OS outside matching", setter("os.id", "gentoo"), {}, "unknown"),
    ("UPD-04", "no KEV entry", None, {"vulnerabilities": [vulnerability()]}, "pass"),
    (
        "UPD-04",
        "KEV, medium, 15 days",
        None,
        {"vulnerabilities": [vulnerability(kev=True, days_since_fix=15)]},
        "fail",
    ),
    (
        "UPD-04",
        "KEV, 14 days",
        None,
        {"vulnerabilities": [vulnerability(kev=True, days_since_fix=14)]},
        "pass",
    ),
    (
        "UPD-04",
        "KEV, 4 days, AI-era catalogue",
        None,
        {
            "vulnerabilities": [vulnerability(kev=True, days_since_fix=4)],
            "settings": {"kev_patch_days": 3},
        },
        "fail",
    ),
    (
        "UPD-04",
        "KEV without a fix",
        None,
        {
            "vulnerabilities": [
                vulnerability(kev=True, fixed_version=None, fix_published=None, days_since_fix=None)
            ]
        },
        "pass",
    ),
    ("UPD-04", "not matched", None, {"vulnerabilities": None}, "unknown"),
    ("UPD-05", "nothing from outside the vendor", None, {}, "pass"),
    ("UPD-05", "supported Django", None, {"software_support": django(True)}, "pass"),
    ("UPD-05", "Django 3.2 after its end", None, {"software_support": django(False)}, "fail"),
    ("UPD-05", "cycle unknown", None, {"software_support": django(None)}, "unknown"),
    ("UPD-05", "not assessed", None, {"software_support": None}, "unknown"),
    ("UPD-05", "package list partial", setter("packages.status", "partial"), {}, "unknown"),
    ("MAL-01", "ClamAV on access, fresh", None, {}, "pass"),
    ("MAL-01", "signatures exactly 3 days old", signature_age("2026-11-22T00:00:00Z"), {}, "pass"),
    ("MAL-01", "signatures 4 days old", signature_age("2026-11-21T23:00:00Z"), {}, "fail"),
    (
        "MAL-01",
        "4 days under a 7-day setting",
        signature_age("2026-11-21T23:00:00Z"),
        {"settings": {"malware_signature_max_age_days": 7}},
        "pass",
    ),
    ("MAL-01", "no on-access scanning", setter("malware.clamav.on_access", False), {}, "fail"),
    ("MAL-01", "nothing installed", nothing_against_malware, {}, "fail"),
    (
        "MAL-01",
        "an EDR agent",
        both(
            nothing_against_malware,
            setter(
                "malware.edr", [{"product": "CrowdStrike Falcon", "unit": "falcon-sensor.service"}]
            ),
        ),
        {},
        "pass",
    ),
    (
        "MAL-01",
        "fapolicyd enforcing",
        both(
            nothing_against_malware,
            setter("malware.fapolicyd", {"installed": True, "enabled": True, "permissive": False}),
        ),
        {},
        "pass",
    ),
    (
        "MAL-01",
        "fapolicyd permissive",
        both(
            nothing_against_malware,
            setter("malware.fapolicyd", {"installed": True, "enabled": True, "permissive": True}),
        ),
        {},
        "fail",
    ),
    (
        "MAL-01",
        "signatures not readable",
        both(
            setter("malware.clamav.newest_signature", None),
            setter("malware.clamav.databases", []),
        ),
        {},
        "unknown",
    ),
    ("MAL-01", "section unreadable", section_unknown("malware"), {}, "unknown"),
    ("BAK-01", "informational", None, {}, "info"),
]


@pytest.mark.parametrize(
    ("check", "change", "overrides", "expected"),
    [
        pytest.param(check, change, overrides, expected, id=f"{check}: {case}")
        for check, case, change, overrides, expected in ROWS
    ],
)
def test_check(check, change, overrides, expected):
    result = run(change, **overrides)
    item = finding(result, check)
    if expected == "n/a":
        assert item is None
        return
    assert item is not None
    assert item["status"] == expected, item["detail"]
    assert item["detail"]
    if expected in ("fail", "unknown"):
        assert item["remediation"]
    else:
        assert item["remediation"] == ""


# Rows whose evidence the schema would refuse: the evaluator must still cope with them (the
# server validates first, but a library caller may not).
BEYOND_THE_SCHEMA = {"Match blocks not detailed", "unparsable tries"}


@pytest.mark.parametrize(
    ("case", "change"),
    [pytest.param(case, change, id=f"{check}: {case}") for check, case, change, _, _ in ROWS],
)
def test_row_evidence_is_valid_evidence(case, change):
    """The crafted evidence follows the agent's contract (docs/evidence.md and its schema)."""
    evidence = good_host()
    if change is not None:
        change(evidence)
    if case in BEYOND_THE_SCHEMA:
        with pytest.raises(EvidenceError):
            validate_evidence(evidence)
    else:
        validate_evidence(evidence)


def test_every_check_has_a_pass_or_info_row_and_a_fail_and_unknown_row():
    outcomes: dict[str, set[str]] = {}
    for check, _case, _change, _overrides, expected in ROWS:
        outcomes.setdefault(check, set()).add(expected)
    for check in bundled_checks():
        seen = outcomes.get(check.id, set())
        if check.informational:
            assert seen == {"info"}, check.id
        else:
            assert {"pass", "fail", "unknown"} <= seen, (check.id, seen)


def test_the_good_host_passes_all_five_controls():
    result = run()
    assert result["controls"] == dict.fromkeys(result["controls"], "pass")
    assert result["summary"]["fail"] == 0
    assert result["summary"]["unknown"] == 0
    assert result["not_applicable"] == ["UPD-06", "UPD-07"]  # dnf and apk on a Debian host


def test_control_verdicts_fail_beats_unknown_and_informational_never_counts():
    findings = [
        {"control": "firewalls", "status": "pass"},
        {"control": "firewalls", "status": "unknown"},
        {"control": "secure_configuration", "status": "unknown"},
        {"control": "secure_configuration", "status": "fail"},
        {"control": "user_access_control", "status": "pass"},
        {"control": "user_access_control", "status": "info"},
        {"control": "security_update_management", "status": "info"},
        {"control": "informational", "status": "fail"},
        {"control": "malware_protection", "status": "pass"},
    ]
    assert control_verdicts(findings) == {
        "firewalls": "unknown",
        "secure_configuration": "fail",
        "security_update_management": "unknown",  # nothing decided it: never a pass
        "user_access_control": "pass",
        "malware_protection": "pass",
    }


def test_a_host_without_sshd_skips_the_ssh_checks_but_still_decides_the_control():
    result = run(setter("ssh.installed", False))
    assert {"SC-03", "UAC-02", "UAC-03"} <= set(result["not_applicable"])
    assert result["summary"]["not_applicable"] == len(result["not_applicable"])
    assert result["controls"]["user_access_control"] == "pass"


def test_informational_checks_report_their_facts():
    result = run(exposed(8443))
    ports = finding(result, "FW-02")
    assert ports["facts"]["exposed"] == [
        {"protocol": "tcp6", "address": "::", "port": 443},
        {"protocol": "tcp", "address": ANY_ADDRESS, "port": 8443},
    ]
    assert "0.0.0.0:8443/tcp" in ports["detail"]
    assert "22/tcp from 192.0.2.0/24" in ports["detail"]
    admins = finding(result, "UAC-08")
    assert admins["facts"]["administrators"] == ["bob-admin"]
    assert "bob-admin" in admins["detail"]
    backups = finding(result, "BAK-01")
    assert backups["control"] == "informational"
    assert "restic" in backups["detail"]


def test_details_say_why_in_the_requested_language():
    change = both(setter("ssh.settings.permitrootlogin", "yes"), PASSWORD_SSH)
    english = finding(run(change, language="en"), "UAC-02")
    japanese = finding(run(change, language="ja"), "UAC-02")
    assert english["title"] == "SSH does not accept root logins with a password"
    assert japanese["title"] == "SSH で root のパスワードログインを許可していない"
    assert english["detail"].startswith(
        "sshd accepts root logins with a password (global setting: PermitRootLogin yes). Why: "
        "derived.ssh_contexts: 1 of 1 items do not comply: global: PermitRootLogin yes; "
        "derived.ssh_contexts[].permitrootlogin is yes (expected one of no, prohibit-password"
    )
    assert (
        "derived.ssh_contexts の 1 件中 1 件が不適合: global: PermitRootLogin yes"
        in (japanese["detail"])
    )
    assert japanese["remediation"].startswith("sshd_config で PermitRootLogin no")

    unknown = finding(run(section_unknown("firewall")), "FW-01")
    assert "section not collected: /firewall: permission denied" in unknown["detail"]
    assert "never counts as passed" in unknown["remediation"]


def test_failing_items_are_named():
    result = run(
        both(
            add_user(name="toor", uid=0),
            sudo_rule("%wheel", ["ALL"], nopasswd=["ALL"], file="/etc/sudoers.d/wheel", line=3),
        )
    )
    assert "toor (uid 0)" in finding(result, "UAC-01")["detail"]
    assert "%wheel (/etc/sudoers.d/wheel:3)" in finding(result, "UAC-07")["detail"]
    overdue = finding(run(vulnerabilities=[OVERDUE]), "UPD-03")
    assert "openssl 3.0.11-1~deb12u2 MAMORI-DEB12-CVE-2024-0727-openssl" in overdue["detail"]


def test_hostile_strings_from_evidence_are_cleaned():
    hostile = "evil\x1b]0;pwned\x07\u202etxt.exe" + "x" * 5000
    result = run(
        both(
            add_user(name=hostile, uid=0),
            setter("host.hostname", hostile),
            lambda e: e["services"]["enabled"].append("telnet.socket"),
        )
    )
    detail = finding(result, "UAC-01")["detail"]
    assert "\x1b" not in detail
    assert "\u202e" not in detail
    assert len(detail) < 2000
    assert result["host"]["hostname"] == hostile  # JSON keeps the value; text rendering cleans it


def test_vulnerabilities_and_lifecycle_pass_through():
    items = [vulnerability(), OVERDUE | {"advisory": "X-2", "kev": True}]
    result = run(vulnerabilities=items, software_support=django(False))
    assert result["vulnerabilities"] == items
    assert result["software_support"] == django(False)
    assert result["os_support"]["supported"] is True
    assert result["summary"]["vulnerabilities"] == 2
    assert result["summary"]["overdue"] == 1
    assert result["summary"]["kev"] == 1
    unassessed = run(vulnerabilities=None, os_support=None, software_support=None)
    assert unassessed["vulnerabilities"] == []
    assert unassessed["os_support"] is None
    assert unassessed["software_support"] is None
    assert unassessed["summary"]["vulnerabilities"] is None


def test_settings_applied_are_reported():
    result = run(settings={"lockout_attempts": 5, "unrelated": 1, "patch_days": 7})
    assert result["settings"]["lockout_attempts"] == 5
    assert result["settings"]["patch_days"] == 7
    assert result["settings"]["kev_patch_days"] == 7  # follows patch_days unless set
    assert result["settings"]["malware_signature_max_age_days"] == 3
    assert "unrelated" not in result["settings"]


def test_bad_arguments_are_refused():
    with pytest.raises(TypeError):
        evaluate([], as_of=AS_OF, settings=SETTINGS)
    with pytest.raises(ValueError, match="language"):
        evaluate(good_host(), as_of=AS_OF, settings=SETTINGS, language="fr")


def leaf_paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    if isinstance(node, dict):
        return [p for key, value in node.items() for p in leaf_paths(value, (*prefix, key))] + [
            prefix
        ]
    if isinstance(node, list):
        return [p for i, value in enumerate(node) for p in leaf_paths(value, (*prefix, i))] + [
            prefix
        ]
    return [prefix]


@pytest.mark.parametrize("operation", ["null", "drop"])
def test_nulling_or_dropping_any_value_never_crashes(operation):
    """Every value and container of the evidence, in turn, set to null or removed: the
    evaluation completes and is a valid document (the evaluator also serves library callers
    that did not validate)."""
    paths = [path for path in leaf_paths(good_host()) if path and path[0] != "schema"]
    assert len(paths) > 150
    for path in paths:
        evidence = good_host()
        *parents, last = path
        target: Any = evidence
        for part in parents:
            target = target[part]
        if operation == "null":
            target[last] = None
        elif isinstance(target, dict):
            del target[last]
        else:
            target.pop(last)
        result = evaluate(
            evidence, as_of=AS_OF, settings=SETTINGS, language="en", **good_assessment()
        )
        VALIDATOR.validate(result)


def test_with_every_section_unknown_nothing_passes():
    evidence = good_host()
    for name, value in list(evidence.items()):
        if isinstance(value, dict) and "status" in value:
            evidence[name] = {"status": "unknown", "errors": [{"path": None, "reason": "x"}]}
    result = evaluate(evidence, as_of=AS_OF, settings=SETTINGS, **good_assessment())
    VALIDATOR.validate(result)
    assert set(result["controls"].values()) == {"unknown"}
    decided = [item for item in result["findings"] if item["status"] in ("pass", "fail")]
    # Only the life-cycle verdict given from outside the evidence can still be decided.
    assert [item["check"] for item in decided] == ["UPD-02"]


def test_a_page_splits_each_detail_into_the_checks_sentence_and_the_evidence_paths():
    """Host pages show the check's sentence and keep the paths apart (``page_finding``); the
    split is exact because no check's own text contains the "Why: " that ``_detail`` adds."""
    from mamori.verification.evaluation import TEXT, page_finding, split_detail

    for check in bundled_checks():
        for texts in check.detail.values():
            for language, text in texts.items():
                assert f" {TEXT['why'][language]}" not in text, check.id
    assert split_detail("Firewall off. Why: firewall.active is no (expected yes)", "en") == (
        "Firewall off.",
        "firewall.active is no (expected yes)",
    )
    assert split_detail("ファイアウォールなし。", "ja") == ("ファイアウォールなし。", "")
    overdue = [vulnerability(days_since_fix=40), vulnerability(package="zlib", kev=True)]
    shown = page_finding(
        {
            "check": "UPD-03",
            "status": "fail",
            "detail": "Important fixes are overdue: openssl …, zlib …. Why: derived.x",
            "facts": {"overdue": overdue, "total": 7},
        },
        "en",
    )
    assert shown == {
        "summary": "Important fixes are overdue: 2 (listed below).",
        "explanation": "derived.x",
        "vulnerabilities": overdue,
    }
