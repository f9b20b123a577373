"""``collect --root`` on a Debian 12 server, an Alpine host and a Rocky Linux 9 host built in
temporary directories; every evidence is checked against the schema."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from mamori_agent.collect import collect
from tests.datafiles import DEBIAN12_PACKAGES

from .roots import HASHES, write


@pytest.fixture(scope="module")
def debian(debian_root, assert_valid) -> dict:
    return assert_valid(collect(str(debian_root)))


@pytest.fixture(scope="module")
def alpine(alpine_root, assert_valid) -> dict:
    return assert_valid(collect(str(alpine_root)))


@pytest.fixture(scope="module")
def rocky(rocky_root, assert_valid) -> dict:
    return assert_valid(collect(str(rocky_root)))


def _dpkg_truth(status: Path) -> dict[tuple[str, str], tuple[str, str, str]]:
    """An independent reading of a dpkg status file with python-debian."""
    from debian import deb822

    truth = {}
    with open(status, encoding="utf-8") as handle:
        for stanza in deb822.Packages.iter_paragraphs(handle, use_apt_pkg=False):
            if stanza.get("Status") not in ("install ok installed", "hold ok installed"):
                continue
            source = stanza.get("Source", stanza["Package"])
            source_name, _, source_version = source.partition(" ")
            truth[(stanza["Package"], stanza["Architecture"])] = (
                stanza["Version"],
                source_name,
                source_version.strip("()") or stanza["Version"],
            )
    return truth


def test_debian_identity(debian):
    assert debian["mode"] == "root"
    assert debian["host"] == {
        "hostname": "bank-web-01",
        "machine_id": "0123456789abcdef0123456789abcdef",
        "architecture": "x86_64",
        "fqdn": "bank-web-01.example.jp",
    }
    system = debian["os"]
    assert system["status"] == "ok"
    assert (system["id"], system["version_id"], system["version_codename"]) == (
        "debian",
        "12",
        "bookworm",
    )
    assert system["debian_version"] == "12.11"
    assert system["kernel"] == {"release": "6.1.0-13-amd64", "version": None}
    assert system["installed_kernels"] == ["6.1.0-9-amd64", "6.1.0-10-amd64", "6.1.0-13-amd64"]


def test_debian_packages_match_the_status_file(debian, debian_root):
    items = debian["packages"]["items"]
    dpkg = {(i["name"], i["architecture"]): i for i in items if i["manager"] == "dpkg"}
    truth = _dpkg_truth(debian_root / "var/lib/dpkg/status")
    assert len(dpkg) == len(truth) == 712 + 3  # the real host's 712, plus three added
    for key, (version, source_name, source_version) in truth.items():
        item = dpkg[key]
        assert (item["version"], item["source_name"], item["source_version"]) == (
            version,
            source_name,
            source_version,
        ), key
    assert dpkg[("bash", "amd64")]["source_version"] == "5.2.15-2"  # binNMU: Source: bash (…)
    assert dpkg[("restic", "amd64")]["version"] == "0.14.0-1+b5"  # "hold ok installed"
    assert ("telnetd", "amd64") not in dpkg  # only its configuration files remain


def test_debian_packages_match_the_snapshot_binary_to_source_map(debian):
    tsv = DEBIAN12_PACKAGES.read_text().splitlines()
    header = tsv[0].split("\t")
    dpkg = {(i["name"], i["architecture"]): i for i in debian["packages"]["items"]}
    for line in tsv[1:]:
        row = dict(zip(header, line.split("\t"), strict=True))
        item = dpkg[(row["package"], row["architecture"])]
        assert (item["source_name"], item["source_version"], item["version"]) == (
            row["source_package"],
            row["source_version"],
            row["version"],
        )


def test_debian_python_distributions(debian):
    python = {i["name"]: i for i in debian["packages"]["items"] if i["manager"] == "python"}
    assert python["pyyaml"]["managed_by"] == "dpkg"
    assert python["pyyaml"]["version"] == "6.0"  # the first Name/Version header block only
    assert python["python-apt"]["location"] == "/usr/lib/python3/dist-packages"  # egg-info file
    assert python["requests"]["installer"] == "pip"
    assert python["requests"]["managed_by"] is None
    assert "django-extensions" in python  # PEP 503 normalised
    assert debian["packages"]["managers"] == ["dpkg", "python"]


def test_debian_updates(debian):
    updates = debian["updates"]
    assert updates["status"] == "ok"
    unattended = updates["unattended_upgrades"]
    # 10periodic turns the lists off, 20auto-upgrades (read later) on; 99disable.bak is ignored
    assert unattended == {
        "installed": True,
        "enabled": True,
        "update_package_lists": True,
        "origins": [
            "origin=Debian,codename=${distro_codename},label=Debian",
            "origin=Debian,codename=${distro_codename},label=Debian-Security",
        ],
    }
    assert updates["dnf_automatic"] is None
    assert updates["apk_periodic"] is None
    sources = updates["apt_sources"]
    assert [entry["uri"] for entry in sources["entries"]] == [
        "http://deb.example.jp/debian",
        "http://deb.debian.org/debian",
        "http://deb.debian.org/debian-security",
    ]
    assert sources["entries"][1]["suites"] == ["bookworm", "bookworm-updates"]
    assert sources["esm"] is False


def test_debian_firewall(debian):
    firewall = debian["firewall"]
    nft, ufw = firewall["backends"]
    assert nft["name"] == "nftables"
    assert (nft["active"], nft["source"], nft["default_inbound"]) == (True, "config", "drop")
    allowed = {(e["port"], e["protocol"], e["source"]) for e in nft["allowed_inbound"]}
    assert allowed == {
        (22, "tcp", "10.0.0.0/8"),  # $SSH_PORT from a define
        (80, "tcp", "any"),  # named set, "http" resolved through the root's /etc/services
        (443, "tcp", "any"),
        (51820, "udp", "any"),  # in a chain reached by "jump"
        ("8000-8080", "tcp", "192.0.2.0/24"),
        ("8000-8080", "tcp", "198.51.100.7"),
        (9100, "tcp", "192.0.2.0/24"),
        (9100, "tcp", "198.51.100.7"),
    }  # 9999 of the included accept-by-default table is dropped by inet filter: not listed
    assert ufw["name"] == "ufw"
    assert (ufw["active"], ufw["default_inbound"]) == (False, "drop")
    assert {(e["port"], e["protocol"], e["source"]) for e in ufw["allowed_inbound"]} == {
        (22, "tcp", "any"),
        (53, "tcp", "10.0.0.0/8"),
        (53, "udp", "10.0.0.0/8"),
    }
    assert firewall["default_inbound"] == "drop"
    assert firewall["allowed_inbound"] == nft["allowed_inbound"]  # ufw is not active


def test_debian_services_ssh(debian):
    services = debian["services"]
    assert services["init"] == "systemd"
    assert services["running"] is None
    assert services["masked"] == ["telnet.socket"]
    assert "nftables.service" in services["enabled"]
    assert "restic-backup.timer" in services["enabled"]
    ssh = debian["ssh"]
    assert ssh["installed"] is True
    assert ssh["files"] == [
        "/etc/ssh/sshd_config",
        "/etc/ssh/sshd_config.d/10-hardening.conf",
        "/etc/ssh/sshd_config.d/20-ciphers.conf",
    ]
    settings = ssh["settings"]
    assert settings["permitrootlogin"] == "no"  # the Include comes first: first value wins
    assert settings["maxauthtries"] == 3
    assert settings["port"] == [22, 2222]
    assert settings["passwordauthentication"] == "yes"  # "Yes" lower-cased
    assert settings["allowusers"] == ["alice", "bob", "deploy"]
    assert settings["x11forwarding"] == "yes"  # Keyword=value form
    assert settings["ciphers"] == "aes256-gcm@openssh.com"
    assert ssh["match_blocks"] == 2
    assert ssh["matches"][0] == {
        "criteria": "User backup Address 10.0.0.0/8",
        "file": "/etc/ssh/sshd_config",
        "line": 12,
        "settings": {"passwordauthentication": "yes", "permitrootlogin": "no"},
    }


def test_debian_accounts_never_contain_hashes(debian):
    accounts = debian["accounts"]
    users = {user["name"]: user for user in accounts["users"]}
    assert accounts["status"] == "partial"  # the malformed passwd line
    assert accounts["errors"] == [{"path": "/etc/passwd", "reason": "line 15: malformed entry"}]
    assert accounts["uid0_besides_root"] == ["toor"]
    assert accounts["empty_password"] == ["carol", "oldstyle"]
    assert accounts["weak_hash"] == ["dave", "frank"]
    assert accounts["locked"] == ["root", "daemon", "sync", "erin", "deploy", "svc"]
    assert (users["alice"]["password"], users["alice"]["hash_scheme"]) == ("hash", "yescrypt")
    assert users["bob"]["hash_scheme"] == "sha512"
    assert users["toor"]["hash_scheme"] == "sha256"
    assert (users["dave"]["hash_scheme"], users["dave"]["weak_hash"]) == ("md5", True)
    assert users["frank"]["hash_scheme"] == "des"
    assert users["legacy"]["password"] == "none"
    assert users["frank"]["login_shell"] is True  # empty shell field: /bin/sh
    assert users["sync"]["login_shell"] is False
    text = json.dumps(debian)
    for secret in HASHES.values():
        assert secret not in text
        assert secret[:20] not in text


def test_debian_privileges(debian):
    privileges = debian["privileges"]
    assert privileges["status"] == "ok", privileges["errors"]
    assert privileges["sudoers_files"] == ["/etc/sudoers", "/etc/sudoers.d/90-deploy"]
    # alice (group sudo), dave and erin (OPS alias, EVERYTHING alias), frank (%#1500 by gid),
    # root and toor (uid 0); bob and carol may only run psql as postgres; deploy is limited.
    assert privileges["administrators"] == ["alice", "dave", "erin", "frank", "root", "toor"]
    assert privileges["admin_groups"] == {"sudo": ["alice"]}
    nopasswd = {(e["principal"], tuple(e["commands"])) for e in privileges["nopasswd"]}
    assert nopasswd == {
        ("deploy", ("ALL",)),  # Defaults:deploy !authenticate
        ("deploy", ("/usr/bin/systemctl restart app",)),  # PASSWD: ends it for journalctl
        ("OPS", ("EVERYTHING",)),
    }
    rules = {(r["principal"], r["file"], r["line"]): r for r in privileges["rules"]}
    assert rules[("OPS", "/etc/sudoers.d/90-deploy", 2)]["runas"] == "ALL"
    assert rules[("%sudo", "/etc/sudoers", 7)]["runas"] == "ALL:ALL"
    assert rules[("carol", "/etc/sudoers.d/90-deploy", 3)]["commands"] == ["/usr/bin/psql"]
    assert "mallory" not in json.dumps(privileges)  # "90-deploy~" is skipped as sudo does


def test_debian_authentication(debian):
    authentication = debian["authentication"]
    assert authentication["faillock"] == {
        "configured": True,
        "deny": 3,  # the module argument wins over faillock.conf's 5
        "unlock_time": 600,
        "fail_interval": 300,  # from faillock.conf
        "source": "/etc/pam.d/common-auth",
        "defaults_applied": [],
    }
    assert authentication["tally2"]["configured"] is False
    assert authentication["pwquality"] == {
        "configured": True,
        "minlen": 14,  # pwquality.conf.d wins over pwquality.conf
        "dictcheck": True,
        "enforce_for_root": True,
        "source": "/etc/security/pwquality.conf.d/50-local.conf",
        "defaults_applied": ["dictcheck"],
    }
    assert authentication["login_defs"] == {"pass_min_len": 10, "encrypt_method": "YESCRYPT"}


def test_debian_malware_and_backups(debian):
    malware = debian["malware"]
    clamav = malware["clamav"]
    assert clamav["installed"] is True
    assert clamav["databases"] == [
        {"name": "daily.cld", "version": 27832, "built": "2026-11-25T07:51:00Z"},
        {"name": "main.cvd", "version": 62, "built": "2021-09-16T12:32:10Z"},  # from stime
    ]
    assert clamav["newest_signature"] == "2026-11-25T07:51:00Z"
    assert (clamav["freshclam_enabled"], clamav["clamd_enabled"], clamav["on_access"]) == (
        True,
        True,
        True,
    )
    assert malware["status"] == "partial"
    assert malware["errors"] == [
        {"path": "/var/lib/clamav/bytecode.cvd", "reason": "no ClamAV-VDB header"}
    ]
    assert malware["fapolicyd"] == {"installed": True, "enabled": False, "permissive": True}
    assert malware["edr"] == [{"product": "Wazuh", "unit": "wazuh-agent.service"}]
    backups = debian["backups"]
    assert backups["tools"] == ["restic", "rclone"]
    assert backups["timers"] == [
        {"kind": "systemd-timer", "source": "restic-backup.timer", "tool": "restic"},
        {"kind": "cron", "source": "/etc/cron.d/rclone-sync", "tool": "rclone"},
    ]


def test_debian_listening_is_unknown_on_a_root(debian):
    assert debian["listening"] == {
        "status": "unknown",
        "errors": [{"path": None, "reason": "not available on a mounted root"}],
        "sockets": None,
    }


def test_alpine(alpine):
    assert alpine["os"]["id"] == "alpine"
    assert alpine["os"]["alpine_release"] == "3.19.1"
    assert alpine["host"]["architecture"] == "x86_64"
    packages = alpine["packages"]
    assert packages["managers"] == ["apk", "python"]
    apk = {item["name"]: item for item in packages["items"] if item["manager"] == "apk"}
    assert apk["openssh-server"] == {
        "manager": "apk",
        "name": "openssh-server",
        "version": "9.6_p1-r0",
        "architecture": "x86_64",
        "source_name": "openssh",
        "source_version": "9.6_p1-r0",
    }
    assert apk["clamav"]["source_name"] == "clamav"  # no origin line: its own name
    python = {item["name"]: item for item in packages["items"] if item["manager"] == "python"}
    assert python["pyyaml"]["managed_by"] == "apk"
    assert (python["flask"]["installer"], python["flask"]["managed_by"]) == ("pip", None)
    assert alpine["updates"]["apk_periodic"] == {"source": "/etc/periodic/daily/apk-autoupgrade"}
    assert alpine["updates"]["unattended_upgrades"] is None
    services = alpine["services"]
    assert services["init"] == "openrc"
    assert services["enabled"] == ["clamd", "freshclam", "iptables", "sshd"]
    (iptables,) = alpine["firewall"]["backends"]
    assert (iptables["name"], iptables["active"], iptables["default_inbound"]) == (
        "iptables",
        True,
        "drop",
    )
    assert {(e["port"], e["protocol"], e["source"]) for e in iptables["allowed_inbound"]} == {
        (22, "tcp", "any"),
        (80, "tcp", "192.168.1.0/24"),
        (443, "tcp", "192.168.1.0/24"),
        ("8000-8010", "tcp", "192.168.1.0/24"),
    }
    assert alpine["privileges"]["admin_groups"] == {"wheel": ["alice", "root"]}
    assert alpine["malware"]["clamav"]["clamd_enabled"] is True
    assert alpine["authentication"]["faillock"]["configured"] is False


def test_rocky_packages_from_a_real_rpm_database(rocky):
    packages = rocky["packages"]
    assert packages["status"] == "ok"
    assert packages["managers"] == ["rpm", "python"]
    rpm = {item["name"]: item for item in packages["items"] if item["manager"] == "rpm"}
    assert rpm["mamori-tiny"] == {
        "manager": "rpm",
        "name": "mamori-tiny",
        "version": "2:1.2.3-4.el9",
        "architecture": "x86_64",
        "source_name": "mamori-tiny",
        "source_version": "2:1.2.3-4.el9",
    }
    assert rpm["mamori-tiny-libs"]["source_name"] == "mamori-tiny"  # subpackage → its SRPM
    assert rpm["python3-tinylib"]["version"] == "1.0-1.el9"  # no epoch: none written
    assert rpm["python3-tinylib"]["architecture"] == "noarch"
    python = {item["name"]: item for item in packages["items"] if item["manager"] == "python"}
    assert python["tinylib"]["managed_by"] == "rpm"  # owned according to BASENAMES/DIRNAMES
    assert python["ansible-core"]["managed_by"] is None
    assert rocky["host"]["architecture"] == "x86_64"


def test_rocky_configuration(rocky):
    assert rocky["os"]["redhat_release"] == "Rocky Linux release 9.3 (Blue Onyx)"
    assert rocky["os"]["id_like"] == ["rhel", "centos", "fedora"]
    assert rocky["updates"]["dnf_automatic"] == {
        "installed": True,
        "apply_updates": True,  # dnf-automatic-install.timer forces it
        "upgrade_type": "security",
        "timer_enabled": True,
    }
    assert rocky["updates"]["apt_sources"] is None
    (firewalld,) = rocky["firewall"]["backends"]
    assert (firewalld["active"], firewalld["default_inbound"]) == (True, "reject")
    assert {(e["port"], e["protocol"], e["source"]) for e in firewalld["allowed_inbound"]} == {
        (22, "tcp", "any"),
        (443, "tcp", "any"),
        (8443, "tcp", "any"),
        ("60000-61000", "udp", "any"),
        (5432, "tcp", "10.0.0.0/8"),
    }  # the /etc zone replaces the vendor one (no cockpit); the drop rule opens nothing
    assert rocky["firewall"]["default_inbound"] == "drop"
    faillock = rocky["authentication"]["faillock"]
    assert (faillock["configured"], faillock["deny"], faillock["unlock_time"]) == (True, 4, 0)
    assert faillock["source"] == "/etc/security/faillock.conf"  # via the authselect link
    assert faillock["defaults_applied"] == ["fail_interval"]
    pwquality = rocky["authentication"]["pwquality"]
    assert (pwquality["minlen"], pwquality["source"]) == (8, "default")
    assert rocky["privileges"]["administrators"] == ["alice", "root"]
    assert rocky["malware"]["fapolicyd"] == {
        "installed": True,
        "enabled": True,
        "permissive": False,
    }
    assert rocky["malware"]["edr"] == [
        {"product": "CrowdStrike Falcon", "unit": "falcon-sensor.service"}
    ]
    assert rocky["malware"]["clamav"]["clamd_enabled"] is True
    assert rocky["ssh"]["installed"] is False


def test_rpm_databases_that_cannot_be_read(tmp_path, rocky_root, assert_valid):
    berkeley = tmp_path / "rhel8"
    write(berkeley, "/etc/os-release", 'ID="rhel"\nVERSION_ID="8.9"\n')
    write(berkeley, "/var/lib/rpm/Packages", b"\x00\x06\x15\x61" + b"\0" * 4092)
    evidence = assert_valid(collect(str(berkeley)))
    packages = evidence["packages"]
    assert packages["managers"] == ["rpm"]  # the host is an rpm host, its packages unknown
    assert packages["items"] == []
    assert packages["status"] == "unknown"
    assert packages["errors"] == [
        {
            "path": "/var/lib/rpm/Packages",
            "reason": "BerkeleyDB/ndb rpm database is not parsed by the agent; "
            "collect on the live host instead",
        },
        {"path": None, "reason": "no package database could be read"},
    ]

    garbage = tmp_path / "garbage"
    write(garbage, "/var/lib/rpm/rpmdb.sqlite", b"this is not sqlite" * 100)
    packages = assert_valid(collect(str(garbage)))["packages"]
    assert packages["status"] == "unknown"
    assert packages["errors"][0]["reason"].startswith("not a readable rpm database")

    damaged = tmp_path / "damaged"
    database = damaged / "var/lib/rpm/rpmdb.sqlite"
    database.parent.mkdir(parents=True)
    shutil.copy(rocky_root / "usr/lib/sysimage/rpm/rpmdb.sqlite", database)
    connection = sqlite3.connect(database)
    with connection:
        connection.execute("INSERT INTO Packages (hnum, blob) VALUES (999, ?)", (b"\0\0\0\1",))
    connection.close()
    packages = assert_valid(collect(str(damaged)))["packages"]
    assert packages["status"] == "partial"
    assert packages["errors"] == [
        {
            "path": "/var/lib/rpm/rpmdb.sqlite",
            "reason": "package header 999: header shorter than 8 bytes",
        }
    ]
    assert len([item for item in packages["items"] if item["manager"] == "rpm"]) == 4
    assert not list(damaged.rglob("*-shm"))  # sqlite worked on a private copy
