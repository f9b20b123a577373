"""Evidence the real agent collects: this machine live, and a root filesystem built from the
Debian 12 snapshot host in tests/data, evaluated without crashing and with the facts we can know."""

from __future__ import annotations

import datetime as dt
import io
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from mamori.catalogue.loader import load_catalogue
from mamori.verification.evaluation import evaluate
from mamori.verification.evidence import validate_evidence
from tests.datafiles import (
    DEBIAN12,
    DEBIAN12_OS_RELEASE,
    DEBIAN12_STATUS,
    DEBIAN12_VERSION,
    DISTRO_INFO,
    KEV_FILE,
)

from .test_checks import VALIDATOR

AGENT = [sys.executable, "-m", "mamori_agent"]
CATALOGUE = Path(__file__).resolve().parents[2] / "src/mamori/catalogue/data/ce-jp-2026.yaml"
AS_OF = dt.date(2026, 11, 25)


def collect(*args: str) -> dict:
    run = subprocess.run([*AGENT, "collect", *args], capture_output=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr.decode()
    evidence = json.loads(run.stdout)
    validate_evidence(evidence)
    return evidence


def statuses(result: dict) -> dict[str, str]:
    return {item["check"]: item["status"] for item in result["findings"]}


@pytest.fixture(scope="module")
def live() -> dict:
    return collect()


@pytest.fixture(scope="module")
def settings() -> dict:
    return dict(load_catalogue(CATALOGUE).settings)


def test_this_machine_live(live, settings):
    result = evaluate(live, as_of=AS_OF, settings=settings, language="en")
    VALIDATOR.validate(result)
    japanese = evaluate(live, as_of=AS_OF, settings=settings)
    VALIDATOR.validate(japanese)
    assert statuses(japanese) == statuses(result)

    assert result["host"]["hostname"] == socket.gethostname()
    os_release = dict(
        line.split("=", 1)
        for line in Path("/etc/os-release").read_text().splitlines()
        if "=" in line
    )
    assert result["host"]["os"] == os_release["PRETTY_NAME"].strip('"')

    # /etc/passwd is world-readable: the uid-0 verdict is known whoever runs the agent.
    uid0 = [
        fields[0]
        for fields in (line.split(":") for line in Path("/etc/passwd").read_text().splitlines())
        if len(fields) > 2 and fields[2] == "0" and fields[0] != "root"
    ]
    assert statuses(result)["UAC-01"] == ("fail" if uid0 else "pass")

    # SSH checks apply exactly when sshd is installed here.
    sshd = Path("/usr/sbin/sshd").exists() or Path("/etc/ssh/sshd_config").exists()
    ssh_checks = {"SC-03", "UAC-02", "UAC-03"}
    assert ssh_checks.isdisjoint(result["not_applicable"]) == sshd

    # Without vulnerability matching or life-cycle data, those checks are never passed.
    for check in ("UPD-02", "UPD-03", "UPD-04", "UPD-05"):
        assert statuses(result)[check] == "unknown"
    assert result["controls"]["security_update_management"] != "pass"

    # Every exposed socket is one the agent saw listening on all addresses.
    ports = next(item for item in result["findings"] if item["check"] == "FW-02")
    listening = {(s["protocol"], s["address"], s["port"]) for s in live["listening"]["sockets"]}
    for socket_ in ports["facts"]["exposed"] or []:
        assert (socket_["protocol"], socket_["address"], socket_["port"]) in listening

    malware = live["malware"]
    nothing = (
        malware["clamav"]["installed"] is False
        and malware["fapolicyd"]["installed"] is False
        and malware["edr"] == []
    )
    if nothing:
        assert statuses(result)["MAL-01"] == "fail"


def write(root: Path, relative: str, text: str, mode: int = 0o644) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)


@pytest.fixture(scope="module")
def mounted_root(tmp_path_factory) -> Path:
    """A Debian 12 root filesystem: the snapshot host's os-release and dpkg status, and an
    account and SSH setup with known faults."""
    root = tmp_path_factory.mktemp("root")
    write(root, "etc/os-release", DEBIAN12_OS_RELEASE.read_text())
    write(root, "etc/debian_version", DEBIAN12_VERSION.read_text())
    write(root, "var/lib/dpkg/status", DEBIAN12_STATUS.read_text())
    write(
        root,
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\n"
        "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
        "toor:x:0:0:second root:/root:/bin/bash\n"
        "alice:x:1000:1000:Alice:/home/alice:/bin/bash\n",
    )
    write(
        root,
        "etc/shadow",
        "root:!:19000:0:99999:7:::\n"
        "daemon:*:19000:0:99999:7:::\n"
        "toor::19000:0:99999:7:::\n"
        "alice:$1$saltsalt$2vnaRpHa6Jxjz5n83ok8Z0:19000:0:99999:7:::\n",
        0o640,
    )
    write(root, "etc/group", "root:x:0:\nsudo:x:27:alice\nalice:x:1000:\n")
    write(
        root,
        "etc/ssh/sshd_config",
        "Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin yes\nUsePAM yes\n",
    )
    write(
        root, "etc/ssh/sshd_config.d/10-local.conf", "PasswordAuthentication yes\nMaxAuthTries 20\n"
    )
    write(root, "etc/sudoers", "root ALL=(ALL:ALL) ALL\n%sudo ALL=(ALL:ALL) NOPASSWD: ALL\n", 0o440)
    return root


@pytest.fixture(scope="module")
def from_root(mounted_root) -> dict:
    return collect("--root", str(mounted_root))


def test_a_mounted_root(from_root, settings):
    assert from_root["mode"] == "root"
    result = evaluate(from_root, as_of=AS_OF, settings=settings, language="en")
    VALIDATOR.validate(result)
    found = statuses(result)
    assert found["UAC-01"] == "fail"  # toor
    assert found["SC-02"] == "fail"  # toor's empty password
    assert found["UAC-06"] == "fail"  # alice's MD5 hash
    assert found["UAC-02"] == "fail"  # PermitRootLogin yes with passwords
    assert found["UAC-03"] == "fail"  # MaxAuthTries 20 from the Included file
    assert found["UAC-04"] == "fail"  # no pam_faillock
    assert found["UAC-07"] == "fail"  # %sudo NOPASSWD: ALL
    assert found["FW-03"] == "unknown"  # no sockets on a mounted root
    assert "toor (uid 0)" in next(i for i in result["findings"] if i["check"] == "UAC-01")["detail"]
    assert len(from_root["packages"]["items"]) == 712


@pytest.mark.django_db
def test_a_mounted_root_through_the_command_with_real_advisories(tmp_path, from_root):
    """The snapshot host had every fix of the Debian 12 records installed: matched
    through the database, nothing is missing and security update management is decided by
    the host's own configuration (no unattended-upgrades in this root: fail)."""
    call_command(
        "advisories",
        "import",
        "--quiet",
        str(DEBIAN12),
        str(KEV_FILE),
        str(DISTRO_INFO / "debian.csv"),
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )
    path = tmp_path / "root.json"
    path.write_text(json.dumps(from_root), encoding="utf-8")
    out = io.StringIO()
    call_command(
        "evaluate",
        str(path),
        "--format",
        "json",
        "--as-of",
        AS_OF.isoformat(),
        stdout=out,
        stderr=io.StringIO(),
    )
    result = json.loads(out.getvalue())
    VALIDATOR.validate(result)
    assert result["vulnerabilities"] == []
    found = statuses(result)
    assert found["UPD-03"] == "pass"
    assert found["UPD-04"] == "pass"
    assert found["UPD-02"] == "pass"  # Debian 12 on LTS (distro-info eol-lts 2028-06-30)
    assert found["UPD-01"] == "fail"
    assert result["controls"]["security_update_management"] == "fail"
