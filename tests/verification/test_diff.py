"""The difference between two collections of one host (``mamori.verification.diff``, pure)."""

from __future__ import annotations

import copy

from mamori.core.controls import FIVE_CONTROLS
from mamori.verification import diff
from tests.verification.factory import debian12_evidence, with_source_version


def _result(controls=None, findings=(), vulnerabilities=()):
    return {
        "controls": dict.fromkeys(FIVE_CONTROLS, "pass") | (controls or {}),
        "findings": list(findings),
        "vulnerabilities": list(vulnerabilities),
    }


def _vulnerability(package, advisory, **extra):
    return {"package": package, "installed_version": "1.0", "advisory": advisory, **extra}


def test_identical_collections_have_no_difference():
    evidence = debian12_evidence()
    result = _result()
    difference = diff.diff_collections(evidence, copy.deepcopy(evidence), result, result)
    assert diff.is_empty(difference)


def test_packages_added_removed_and_changed():
    old = debian12_evidence()
    new = with_source_version(old, "openssl", "3.0.99-1~deb12u1")
    items = new["packages"]["items"]
    removed = next(item for item in items if item["name"] == "adduser")
    items.remove(removed)
    items.append(
        {
            "manager": "python",
            "name": "django",
            "version": "3.2.0",
            "architecture": None,
            "source_name": "django",
            "source_version": "3.2.0",
        }
    )
    packages = diff.diff_packages(old, new)
    assert packages["added"] == [
        {"manager": "python", "name": "django", "architecture": "", "version": "3.2.0"}
    ]
    assert [p["name"] for p in packages["removed"]] == ["adduser"]
    changed = {p["name"]: p for p in packages["changed"]}
    openssl_binaries = {
        item["name"] for item in old["packages"]["items"] if item["source_name"] == "openssl"
    }
    assert set(changed) == openssl_binaries
    assert changed["openssl"]["new_version"] == "3.0.99-1~deb12u1"
    assert changed["openssl"]["old_version"] != "3.0.99-1~deb12u1"


def test_a_package_installed_twice_is_compared_as_a_set_of_versions():
    def python_item(version, location):
        return {
            "manager": "python",
            "name": "requests",
            "version": version,
            "architecture": None,
            "source_name": "requests",
            "source_version": version,
            "location": location,
        }

    old = {"packages": {"items": [python_item("2.28.1", "/usr/lib/python3/dist-packages")]}}
    new = {
        "packages": {
            "items": [
                python_item("2.28.1", "/usr/lib/python3/dist-packages"),
                python_item("2.32.3", "/usr/local/lib/python3.11/dist-packages"),
            ]
        }
    }
    changed = diff.diff_packages(old, new)["changed"]
    assert changed == [
        {
            "manager": "python",
            "name": "requests",
            "architecture": "",
            "old_version": "2.28.1",
            "new_version": "2.28.1, 2.32.3",
        }
    ]


def test_findings_whose_status_changed():
    old = _result(
        findings=[
            {"check": "FW-01", "control": "firewalls", "status": "pass", "title": "fw"},
            {"check": "SSH-01", "control": "secure_configuration", "status": "fail"},
            {"check": "UAC-01", "control": "user_access_control", "status": "pass"},
        ]
    )
    new = _result(
        findings=[
            {"check": "FW-01", "control": "firewalls", "status": "fail", "title": "fw"},
            {"check": "SSH-01", "control": "secure_configuration", "status": "fail"},
            {"check": "MAL-01", "control": "malware_protection", "status": "unknown"},
        ]
    )
    changes = {change["check"]: change for change in diff.diff_findings(old, new)}
    assert set(changes) == {"FW-01", "UAC-01", "MAL-01"}
    assert (changes["FW-01"]["old_status"], changes["FW-01"]["new_status"]) == ("pass", "fail")
    assert (changes["UAC-01"]["old_status"], changes["UAC-01"]["new_status"]) == ("pass", None)
    assert (changes["MAL-01"]["old_status"], changes["MAL-01"]["new_status"]) == (None, "unknown")


def test_vulnerabilities_new_and_resolved():
    old = _result(vulnerabilities=[_vulnerability("openssl", "A-1"), _vulnerability("tar", "A-2")])
    new = _result(
        vulnerabilities=[
            _vulnerability("tar", "A-2"),
            _vulnerability("glibc", "A-3", kev=True, overdue=True),
        ]
    )
    vulnerabilities = diff.diff_vulnerabilities(old, new)
    assert [(v["package"], v["advisory"], v.get("kev")) for v in vulnerabilities["new"]] == [
        ("glibc", "A-3", True)
    ]
    assert [(v["package"], v["advisory"]) for v in vulnerabilities["resolved"]] == [
        ("openssl", "A-1")
    ]


def test_controls_that_changed():
    old = _result()
    new = _result({"firewalls": "fail", "malware_protection": "unknown"})
    assert diff.diff_controls(old, new) == [
        {"control": "firewalls", "old": "pass", "new": "fail"},
        {"control": "malware_protection", "old": "pass", "new": "unknown"},
    ]


def test_listening_ports_firewall_and_administrators():
    old = debian12_evidence()
    new = copy.deepcopy(old)
    new["listening"]["sockets"].append(
        {"protocol": "tcp6", "address": "::", "port": 8080, "inode": 7}
    )
    new["listening"]["sockets"] = [s for s in new["listening"]["sockets"] if s["port"] != 5432]
    new["firewall"]["default_inbound"] = "accept"
    new["firewall"]["backends"][0]["active"] = False
    new["firewall"]["allowed_inbound"].append(
        {"port": "8000-8100", "protocol": "tcp", "source": "any"}
    )
    new["privileges"]["administrators"].append("mallory")
    new["privileges"]["nopasswd"].append(
        {"principal": "mallory", "file": "/etc/sudoers", "line": 9}
    )
    new["accounts"]["uid0_besides_root"] = ["toor"]
    new["ssh"]["settings"]["permitrootlogin"] = "yes"
    new["services"]["enabled"].append("telnet.socket")

    difference = diff.diff_collections(old, new)
    network = difference["network"]
    assert network["listening_opened"] == [{"protocol": "tcp6", "address": "::", "port": 8080}]
    assert network["listening_closed"] == [
        {"protocol": "tcp", "address": "127.0.0.1", "port": 5432}
    ]
    assert network["default_inbound"] == {"old": "drop", "new": "accept"}
    assert network["backends"] == [{"name": "nftables", "old": True, "new": False}]
    assert network["allowed_added"] == [{"port": "8000-8100", "protocol": "tcp", "source": "any"}]
    assert network["allowed_removed"] == []
    access = difference["access"]
    assert access["administrators"] == {"added": ["mallory"], "removed": []}
    assert access["nopasswd"] == {"added": ["mallory"], "removed": []}
    assert access["uid0_besides_root"] == {"added": ["toor"], "removed": []}
    settings = difference["settings"]
    assert settings["ssh"] == [{"setting": "permitrootlogin", "old": "no", "new": "yes"}]
    assert settings["services"] == {"added": ["telnet.socket"], "removed": []}
    assert not diff.is_empty(difference)


def test_missing_sections_and_odd_values_are_treated_as_empty():
    """An older or partial document must never crash the diff page."""
    odd = {
        "packages": {"items": [None, 3, {"name": 5}, {"name": "x", "version": None}]},
        "listening": {"sockets": "not a list"},
        "firewall": None,
        "privileges": {"administrators": ["root", 7]},
        "ssh": {"settings": ["no"]},
    }
    difference = diff.diff_collections({}, odd, None, {"findings": [{"no": "check"}]})
    assert difference["packages"]["added"] == [
        {"manager": "", "name": "x", "architecture": "", "version": ""}
    ]
    assert difference["access"]["administrators"] == {"added": ["root"], "removed": []}
    assert difference["network"]["listening_opened"] == []
    assert difference["findings"] == []
    assert difference["controls"] == []
