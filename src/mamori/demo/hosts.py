"""Demo hosts: the technical-verification side of the demo.

For two fictitious demo organisations (Kohaku Bank, whose certificate is about to expire, and
Menou Systems, an IT vendor whose certificate is valid) this writes a small root filesystem per host in a temporary
directory — a real Debian 12 package list with a few packages held back, ``sshd_config``,
nftables or ufw, PAM, sudoers, ClamAV databases — runs the real agent on it
(``mamori_agent.collect``, the ``--root`` mode, in-process) and stores the evidence through
``accept_upload``, which evaluates it against the bundled advisories (``data/advisories``,
imported first with the real importer).

The demo stands for agents that run on the hosts themselves, so two things of a live collection
are added to what the ``--root`` mode can read: the listening sockets (the agent's own
``/proc/net`` reader, over tables written into the tree) and ``mode: live``. Collection times
are fixed per run day (the evening before, UTC), so that running ``mamori demo`` again the same
day uploads identical evidence, which the server recognises as a duplicate; on a later day the
hosts check in once more, as deployed agents would. A host's earlier collection (for the
history and the diff) is uploaded only when the host is new.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import ipaddress
import json
import sys
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from django.core.management import call_command
from django.utils import timezone
from django.utils.translation import gettext as _

from mamori.advisories.models import ImportRun
from mamori.demo import cast
from mamori.organisations.models import Membership, Organisation, Role
from mamori.verification.models import Host, identity_key
from mamori.verification.services import AgentUpload, accept_upload
from mamori_agent.collect import collect
from mamori_agent.collect.listening import collect_listening
from mamori_agent.context import Context, Section
from mamori_agent.rootfs import FileSystem

DATA = Path(__file__).resolve().parent / "data"
ADVISORIES = DATA / "advisories"
HOST_DATA = DATA / "hosts"
EARLIER_DAYS = 5
# ClamAV's daily database as freshclam keeps it: rebuilt every day.
SIGNATURE_AGE = dt.timedelta(hours=6)

KOHAKU_BANK = cast.KOHAKU_BANK.name_en
MENOU_SYSTEMS = cast.MENOU_SYSTEMS.name_en
DOMAINS = {KOHAKU_BANK: "kohaku.example.jp", MENOU_SYSTEMS: "menou.example.jp"}

# What a Debian 12 server has held back when nobody upgrades it: versions of late 2023, each
# below the fixes of several bundled advisories (glibc's CVE-2023-4911, libwebp's CVE-2023-4863
# and nghttp2's CVE-2023-44487 are in CISA's KEV catalogue).
UNPATCHED_2023 = {
    "glibc": "2.36-9+deb12u1",
    "openssl": "3.0.11-1~deb12u2",
    "curl": "7.88.1-10+deb12u3",
    "nghttp2": "1.52.0-1",
    "libwebp": "1.2.4-0.2",
    "systemd": "252.17-1~deb12u1",
    "openssh": "1:9.2p1-2+deb12u1",
}
# The Ubuntu 22.04 fixes of the bundled USNs (the hand-written list has the versions before).
UBUNTU_FIXED = {
    "glibc": "2.35-0ubuntu3.7",
    "curl": "7.81.0-1ubuntu1.16",
    "openssh": "1:8.9p1-3ubuntu0.10",
    "sudo": "1.9.9-1ubuntu2.5",
}


@dataclass(frozen=True)
class Spec:
    """One demo host: what differs from a well-kept server."""

    organisation: str  # name_en
    hostname: str
    system: str = "debian12"  # debian12, ubuntu2204 or debian11
    extra: tuple[str, ...] = ()  # binaries from debian12-server-status besides the usual ones
    versions: dict[str, str] = field(default_factory=dict)  # source package → version
    earlier: dict[str, str] | None = None  # versions of a collection EARLIER_DAYS before
    firewall: str | None = "nftables"  # nftables, ufw, or None (installed, not enabled)
    allowed: tuple[tuple[int, str], ...] = ((22, "10.0.0.0/8"),)  # (port, source)
    listening: tuple[tuple[str, str, int], ...] = (("tcp", "0.0.0.0", 22), ("tcp6", "::", 22))  # noqa: S104
    ssh_passwords: bool = False  # PasswordAuthentication and root logins with a password
    lockout: bool = True  # pam_faillock
    malware: str | None = "clamav"  # clamav (on-access), edr, or None
    auto_updates: bool = True
    nopasswd_all: str = ""  # a user granted every command without a password
    pip: tuple[tuple[str, str], ...] = ()  # (name, version) installed with pip in /usr/local
    users: tuple[str, ...] = ("tanaka", "suzuki")  # administrators (in group sudo)
    service_users: tuple[tuple[str, int, str], ...] = ()  # (name, uid, home)


WEB_PORTS = ((22, "10.0.0.0/8"), (80, "any"), (443, "any"))
WEB_SOCKETS = (
    ("tcp", "0.0.0.0", 22),  # noqa: S104
    ("tcp", "0.0.0.0", 80),  # noqa: S104
    ("tcp", "0.0.0.0", 443),  # noqa: S104
    ("tcp6", "::", 22),
    ("tcp6", "::", 80),
    ("tcp6", "::", 443),
)

HOSTS: tuple[Spec, ...] = (
    # Kohaku Bank: a web server that was upgraded this week (the history shows the openssl
    # upgrade that fixed it), a neglected application server, a database server without a host
    # firewall, a bastion accepting passwords, an unpatched Ubuntu batch server and a reporting
    # server still on Debian 11.
    Spec(
        KOHAKU_BANK,
        "kb-web-01",
        extra=("nginx", "nginx-common"),
        earlier={"openssl": "3.0.18-1~deb12u2"},
        allowed=WEB_PORTS,
        listening=WEB_SOCKETS,
    ),
    Spec(
        KOHAKU_BANK,
        "kb-app-01",
        versions=UNPATCHED_2023,
        allowed=((22, "10.0.0.0/8"), (8080, "10.0.1.0/24")),
        listening=(("tcp", "0.0.0.0", 22), ("tcp", "0.0.0.0", 8080)),  # noqa: S104
        malware="edr",
        auto_updates=False,
        pip=(("Django", "4.1.13"), ("gunicorn", "21.2.0")),
        service_users=(("app", 1500, "/srv/app"),),
    ),
    Spec(
        KOHAKU_BANK,
        "kb-db-01",
        extra=("postgresql-15", "postgresql-client-15"),
        firewall=None,
        listening=(
            ("tcp", "0.0.0.0", 22),  # noqa: S104
            ("tcp", "0.0.0.0", 5432),  # noqa: S104
            ("tcp6", "::", 22),
            ("tcp6", "::", 5432),
        ),
        service_users=(("postgres", 105, "/var/lib/postgresql"),),
    ),
    Spec(
        KOHAKU_BANK,
        "kb-bastion-01",
        allowed=((22, "any"),),
        ssh_passwords=True,
        lockout=False,
        users=("tanaka", "suzuki", "sato", "vendor01"),
    ),
    Spec(
        KOHAKU_BANK,
        "kb-batch-01",
        system="ubuntu2204",
        firewall="ufw",
        malware=None,
    ),
    Spec(KOHAKU_BANK, "kb-report-01", system="debian11", malware="edr"),
    # Menou Systems: a well-kept web server, a second one whose openssh is behind (its nghttp2 was
    # upgraded this week, clearing a KEV finding), a CI server with an old git and a sudo rule
    # without a password, and a patched Ubuntu jump host.
    Spec(
        MENOU_SYSTEMS,
        "ms-web-01",
        extra=("nginx", "nginx-common"),
        allowed=WEB_PORTS,
        listening=WEB_SOCKETS,
        malware="edr",
        users=("yamada", "kobayashi"),
    ),
    Spec(
        MENOU_SYSTEMS,
        "ms-web-02",
        extra=("nginx", "nginx-common"),
        versions={"openssh": "1:9.2p1-2+deb12u2"},
        earlier={"openssh": "1:9.2p1-2+deb12u2", "nghttp2": "1.52.0-1"},
        allowed=WEB_PORTS,
        listening=WEB_SOCKETS,
        users=("yamada", "kobayashi"),
    ),
    Spec(
        MENOU_SYSTEMS,
        "ms-ci-01",
        versions={"git": "1:2.39.5-0+deb12u2"},
        allowed=((22, "10.0.0.0/8"), (8080, "10.20.0.0/16")),
        listening=(("tcp", "0.0.0.0", 22), ("tcp6", "::", 8080)),  # noqa: S104
        malware=None,
        nopasswd_all="jenkins",
        users=("yamada", "kobayashi"),
        service_users=(("jenkins", 110, "/var/lib/jenkins"),),
    ),
    Spec(
        MENOU_SYSTEMS,
        "ms-jump-01",
        system="ubuntu2204",
        versions=UBUNTU_FIXED,
        firewall="ufw",
        malware="edr",
        users=("yamada", "kobayashi"),
    ),
)

# Made-up hashes in crypt(3) formats (no real password); the agent never copies them.
YESCRYPT = "$y$j9T$Zm9vYmFyYmF6cXV4$Ck6Dg9mRrW1m0bQ3c9mF0x3Jq1yY7nQ2pT8sV4uL6e5"

DEBIAN_SOURCES = """
    Types: deb
    URIs: http://deb.debian.org/debian
    Suites: {codename} {codename}-updates
    Components: main
    Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

    Types: deb
    URIs: http://security.debian.org/debian-security
    Suites: {codename}-security
    Components: main
    Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
    """
UBUNTU_SOURCES = """
    deb http://jp.archive.ubuntu.com/ubuntu/ jammy main restricted universe
    deb http://jp.archive.ubuntu.com/ubuntu/ jammy-updates main restricted universe
    deb http://security.ubuntu.com/ubuntu jammy-security main restricted universe
    """
SYSTEMS = {
    "debian12": ("debian12", "bookworm", "6.1.0-28-amd64"),
    "debian11": ("debian11", "bullseye", "5.10.0-32-amd64"),
    "ubuntu2204": ("ubuntu2204", "jammy", "5.15.0-105-generic"),
}


# --- Writing a root filesystem ------------------------------------------------------------------


def machine_id(spec: Spec) -> str:
    """The host's ``/etc/machine-id``: fixed per organisation and hostname."""
    seed = f"mamori-demo:{spec.organisation}:{spec.hostname}"
    return hashlib.sha256(seed.encode("utf-8")).hexdigest()[:32]


def _write(root: Path, path: str, content: str | bytes, mode: int | None = None) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        target.write_text(textwrap.dedent(content).lstrip("\n"), encoding="utf-8")
    else:
        target.write_bytes(content)
    if mode is not None:
        target.chmod(mode)


def _link(root: Path, path: str, target: str) -> None:
    entry = root / path.lstrip("/")
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.symlink_to(target)


def _enable(root: Path, unit: str, target: str = "multi-user.target") -> None:
    _link(root, f"/etc/systemd/system/{target}.wants/{unit}", f"/lib/systemd/system/{unit}")


def _stanzas(text: str) -> list[dict[str, str]]:
    result = []
    for block in text.strip().split("\n\n"):
        fields = {}
        for line in block.splitlines():
            key, _sep, value = line.partition(":")
            fields[key] = value.strip()
        result.append(fields)
    return result


def dpkg_status(spec: Spec, versions: dict[str, str]) -> str:
    """The host's ``/var/lib/dpkg/status``: the bundled list, with the spec's extra server
    packages, and every binary of a source package in ``versions`` at that version."""
    system = SYSTEMS[spec.system][0]
    stanzas = _stanzas((HOST_DATA / f"{system}-dpkg-status").read_text(encoding="utf-8"))
    if system == "debian12":
        server = {
            fields["Package"]: fields
            for fields in _stanzas(
                (HOST_DATA / "debian12-server-status").read_text(encoding="utf-8")
            )
        }
        wanted = [
            "openssh-server",
            "openssh-sftp-server",
            "sudo",
            "nftables",
            "libnftables1",
            "unattended-upgrades",
            "cron",
            "rsyslog",
            "chrony",
            *spec.extra,
        ]
        if spec.malware == "clamav":
            wanted += ["clamav", "clamav-base", "clamav-freshclam", "clamav-daemon", "libclamav12"]
        # The snapshot machine runs PostgreSQL; only the database server keeps it.
        stanzas = [
            fields
            for fields in stanzas
            if fields["Package"] not in ("postgresql-15", "postgresql-client-15")
            or fields["Package"] in spec.extra
        ]
        stanzas += [server[name] for name in wanted if name in server]
    lines = []
    for fields in stanzas:
        source = fields.get("Source", fields["Package"]).split(" (")[0]
        if source in versions:
            fields = {**fields, "Version": versions[source]}
            if source != fields["Package"]:
                fields["Source"] = source
        lines.append("".join(f"{key}: {value}\n" for key, value in fields.items()))
    return "\n".join(lines)


def _proc_net(sockets: list[tuple[str, str, int]], protocol: str) -> str:
    """A ``/proc/net/tcp``-style table (addresses as the kernel prints them: 32-bit words in
    host byte order)."""
    lines = [
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  "
        "timeout inode"
    ]
    for index, (kind, address, port) in enumerate(sockets):
        if kind != protocol:
            continue
        packed = ipaddress.ip_address(address).packed
        words = "".join(
            int.from_bytes(packed[start : start + 4], sys.byteorder).to_bytes(4, "big").hex()
            for start in range(0, len(packed), 4)
        ).upper()
        remote = "0" * len(words)
        state = "0A" if kind.startswith("tcp") else "07"  # LISTEN; UDP: bound, unconnected
        lines.append(
            f"{index:4}: {words}:{port:04X} {remote}:0000 {state} 00000000:00000000 00:00000000 "
            f"00000000     0        0 {20000 + index} 1 0000000000000000 100 0 0 10 0"
        )
    return "\n".join(lines) + "\n"


def _cvd(name: str, version: int, built: dt.datetime) -> bytes:
    stamp = built.strftime("%d %b %Y %H-%M +0000")
    header = (
        f"ClamAV-VDB:{stamp}:{version}:{2071950 + version}:90:X:X:{name}:{int(built.timestamp())}"
    )
    return header.encode("ascii").ljust(512, b" ") + b"\x1f\x8b\x08\x00"


def write_root(root: Path, spec: Spec, versions: dict[str, str], collected: dt.datetime) -> None:
    """Write the files the agent reads for this host under ``root``."""
    system, codename, kernel = SYSTEMS[spec.system]
    ubuntu = system.startswith("ubuntu")
    for directory in ("lib", "sbin", "bin"):  # merged /usr
        (root / "usr" / directory).mkdir(parents=True, exist_ok=True)
        _link(root, f"/{directory}", f"usr/{directory}")
    _write(root, "/usr/lib/os-release", (HOST_DATA / f"{system}-os-release").read_bytes())
    _link(root, "/etc/os-release", "../usr/lib/os-release")
    if not ubuntu:
        _write(root, "/etc/debian_version", (HOST_DATA / f"{system}-debian_version").read_bytes())
    _write(root, "/usr/lib/systemd/systemd", b"\x7fELF")
    _link(root, "/usr/sbin/init", "/lib/systemd/systemd")
    _write(root, "/usr/sbin/sshd", b"\x7fELF")
    (root / "usr/lib/modules" / kernel / "kernel").mkdir(parents=True)
    _write(root, f"/boot/vmlinuz-{kernel}", b"kernel")

    domain = DOMAINS.get(spec.organisation, "example.jp")
    _write(root, "/etc/hostname", f"{spec.hostname}\n")
    _write(
        root,
        "/etc/hosts",
        f"127.0.0.1 localhost\n10.0.0.10 {spec.hostname}.{domain} {spec.hostname}\n",
    )
    _write(root, "/etc/machine-id", machine_id(spec) + "\n")
    _write(root, "/var/lib/dpkg/status", dpkg_status(spec, versions))
    for name, version in spec.pip:
        folder = f"/usr/local/lib/python3.11/dist-packages/{name}-{version}.dist-info"
        _write(
            root, f"{folder}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        )
        _write(root, f"{folder}/INSTALLER", "pip\n")

    # Accounts: root locked, personal administrators in group sudo, service accounts.
    passwd = [
        "root:x:0:0:root:/root:/bin/bash",
        "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin",
        "sshd:x:104:65534::/run/sshd:/usr/sbin/nologin",
    ]
    shadow = ["root:*:19700:0:99999:7:::", "daemon:*:19700:0:99999:7:::", "sshd:!:19700::::::"]
    for name, uid, home in spec.service_users:
        passwd.append(f"{name}:x:{uid}:{uid}::{home}:/bin/bash")
        shadow.append(f"{name}:!:19700::::::")
    for offset, name in enumerate(spec.users):
        passwd.append(f"{name}:x:{1000 + offset}:{1000 + offset}:{name}:/home/{name}:/bin/bash")
        shadow.append(f"{name}:{YESCRYPT}:19900:0:99999:7:::")
    _write(root, "/etc/passwd", "\n".join(passwd) + "\n")
    _write(root, "/etc/shadow", "\n".join(shadow) + "\n", mode=0o640)
    administrators = [name for name in spec.users if not name.startswith("vendor")]
    _write(
        root,
        "/etc/group",
        f"root:x:0:\nsudo:x:27:{','.join(administrators)}\n"
        + "".join(f"{name}:x:{1000 + i}:\n" for i, name in enumerate(spec.users)),
    )
    _write(
        root,
        "/etc/sudoers",
        """
        Defaults\tenv_reset
        Defaults\tsecure_path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        root\tALL=(ALL:ALL) ALL
        %sudo\tALL=(ALL:ALL) ALL
        @includedir /etc/sudoers.d
        """,
        mode=0o440,
    )
    if spec.nopasswd_all:
        _write(
            root, "/etc/sudoers.d/90-ci", f"{spec.nopasswd_all} ALL=(ALL) NOPASSWD: ALL\n", 0o440
        )

    # SSH: keys only, or (the bastion) passwords and root logins too.
    _write(
        root,
        "/etc/ssh/sshd_config",
        """
        Include /etc/ssh/sshd_config.d/*.conf
        KbdInteractiveAuthentication no
        UsePAM yes
        X11Forwarding yes
        PrintMotd no
        AcceptEnv LANG LC_*
        Subsystem sftp /usr/lib/openssh/sftp-server
        """,
    )
    if spec.ssh_passwords:
        hardening = "PermitRootLogin yes\nPasswordAuthentication yes\n"
    else:
        hardening = "PermitRootLogin no\nPasswordAuthentication no\nMaxAuthTries 3\n"
    _write(root, "/etc/ssh/sshd_config.d/50-mamori-demo.conf", hardening)

    # PAM: lockout after 5 failures and a 12-character minimum with a dictionary check.
    auth = ["auth\t[success=1 default=ignore]\tpam_unix.so nullok", "auth\trequisite\tpam_deny.so"]
    if spec.lockout:
        auth = [
            "auth\trequired\tpam_faillock.so preauth",
            "auth\t[success=1 default=ignore]\tpam_unix.so nullok",
            "auth\t[default=die]\tpam_faillock.so authfail",
            "auth\trequisite\tpam_deny.so",
            "auth\tsufficient\tpam_faillock.so authsucc",
        ]
        _write(root, "/etc/security/faillock.conf", "deny = 5\nunlock_time = 900\n")
    _write(root, "/etc/pam.d/common-auth", "\n".join(auth) + "\n")
    _write(
        root,
        "/etc/pam.d/common-password",
        "password\trequisite\tpam_pwquality.so retry=3\n"
        "password\t[success=1 default=ignore]\tpam_unix.so obscure use_authtok yescrypt\n",
    )
    _write(root, "/etc/security/pwquality.conf", "minlen = 12\ndictcheck = 1\n")
    _write(root, "/etc/login.defs", "PASS_MAX_DAYS\t99999\nENCRYPT_METHOD YESCRYPT\n")

    # Updates.
    if ubuntu:
        _write(root, "/etc/apt/sources.list", UBUNTU_SOURCES)
    else:
        _write(
            root,
            "/etc/apt/sources.list.d/debian.sources",
            DEBIAN_SOURCES.format(codename=codename),
        )
    _write(
        root,
        "/etc/apt/apt.conf.d/50unattended-upgrades",
        """
        Unattended-Upgrade::Origins-Pattern {
                "origin=Debian,codename=${distro_codename},label=Debian-Security";
                "origin=Debian,codename=${distro_codename}-security,label=Debian-Security";
        };
        """
        if not ubuntu
        else """
        Unattended-Upgrade::Allowed-Origins {
                "${distro_id}:${distro_codename}-security";
                "${distro_id}ESMApps:${distro_codename}-apps-security";
        };
        """,
    )
    if spec.auto_updates:
        _write(
            root,
            "/etc/apt/apt.conf.d/20auto-upgrades",
            'APT::Periodic::Update-Package-Lists "1";\nAPT::Periodic::Unattended-Upgrade "1";\n',
        )

    # Firewall.
    units = ["ssh.service", "cron.service", "rsyslog.service"]
    if not ubuntu:
        units.append("chrony.service")
    rules = []
    for port, source in spec.allowed:
        if source == "any":
            rules.append(f"tcp dport {port} accept")
        else:
            rules.append(f"ip saddr {source} tcp dport {port} accept")
    nft_rules = "\n".join(f"        {rule}" for rule in rules)
    if not ubuntu:
        _write(
            root,
            "/etc/nftables.conf",
            "#!/usr/sbin/nft -f\n\nflush ruleset\n\ntable inet filter {\n"
            "    chain input {\n        type filter hook input priority filter; policy drop;\n"
            "        iif lo accept\n        ct state established,related accept\n"
            f"{nft_rules}\n        icmp type echo-request accept\n    }}\n"
            "    chain forward {\n        type filter hook forward priority filter; policy drop;\n"
            "    }\n}\n",
        )
    if spec.firewall == "nftables":
        _enable(root, "nftables.service", "sysinit.target")
    if ubuntu:
        _write(
            root,
            "/etc/ufw/ufw.conf",
            f"ENABLED={'yes' if spec.firewall == 'ufw' else 'no'}\nLOGLEVEL=low\n",
        )
        _write(root, "/etc/default/ufw", 'IPV6=yes\nDEFAULT_INPUT_POLICY="DROP"\n')
        tuples = "".join(
            f"### tuple ### allow tcp {port} 0.0.0.0/0 any "
            f"{'0.0.0.0/0' if source == 'any' else source} in\n"
            f"-A ufw-user-input -p tcp --dport {port} "
            f"{'' if source == 'any' else f'-s {source} '}-j ACCEPT\n\n"
            for port, source in spec.allowed
        )
        _write(
            root,
            "/etc/ufw/user.rules",
            f"*filter\n:ufw-user-input - [0:0]\n### RULES ###\n\n{tuples}### END RULES ###\nCOMMIT\n",
        )
        if spec.firewall == "ufw":
            _enable(root, "ufw.service")

    # Malware protection.
    if spec.malware == "clamav":
        built = collected - SIGNATURE_AGE
        _write(root, "/var/lib/clamav/main.cvd", _cvd("sigmgr", 62, built - dt.timedelta(days=400)))
        _write(root, "/var/lib/clamav/daily.cld", _cvd("raynman", 27830, built))
        _write(
            root,
            "/var/lib/clamav/bytecode.cvd",
            _cvd("nrandolp", 335, built - dt.timedelta(days=90)),
        )
        _write(root, "/etc/clamav/freshclam.conf", "DatabaseDirectory /var/lib/clamav\nChecks 24\n")
        _write(
            root,
            "/etc/clamav/clamd.conf",
            "LocalSocket /var/run/clamav/clamd.ctl\nOnAccessIncludePath /home\n"
            "OnAccessIncludePath /srv\nOnAccessExcludeUname clamav\nOnAccessPrevention yes\n",
        )
        units += ["clamav-daemon.service", "clamav-freshclam.service", "clamav-clamonacc.service"]
    elif spec.malware == "edr":
        _write(root, "/opt/CrowdStrike/falcond", b"\x7fELF")
        units.append("falcon-sensor.service")
    if "nginx" in spec.extra:
        units.append("nginx.service")
    if "postgresql-15" in spec.extra:
        units.append("postgresql.service")
    for unit in units:
        _enable(root, unit)
    _enable(root, "apt-daily-upgrade.timer", "timers.target")

    # The kernel's socket tables, for the live part of the collection.
    sockets = [*spec.listening, ("tcp", "127.0.0.1", 25), ("udp", "127.0.0.1", 323)]
    for protocol in ("tcp", "tcp6", "udp", "udp6"):
        _write(root, f"/proc/net/{protocol}", _proc_net(sockets, protocol))


# --- Collecting ---------------------------------------------------------------------------------


class _NoCommands:
    """A command runner that runs nothing: the agent's live readers of ``/proc`` get a live
    context over the tree, and nothing is ever executed."""

    def available(self, key: str) -> bool:
        return False

    def run(self, key: str):  # pragma: no cover - never called: available() is False
        raise RuntimeError("the demo runs no commands")


def collect_host(spec: Spec, versions: dict[str, str], collected: dt.datetime) -> dict:
    """Evidence for one host at one moment, from the real agent run on a written tree."""
    with tempfile.TemporaryDirectory(prefix="mamori-demo-host-") as directory:
        root = Path(directory)
        write_root(root, spec, versions, collected)
        evidence = collect(str(root))
        live = Context(FileSystem(str(root)), _NoCommands())
        evidence["listening"] = collect_listening(Section(live))
    evidence["mode"] = "live"
    evidence["collected_at"] = collected.strftime("%Y-%m-%dT%H:%M:%SZ")
    # Deterministic, so that the same collection uploaded again is recognised as a duplicate.
    evidence["duration_ms"] = 600 + 7 * len(evidence["packages"].get("items") or ())
    return evidence


def collections(spec: Spec, run_day: dt.date, index: int) -> list[tuple[dt.datetime, dict]]:
    """(collected_at, versions) of the host's collections, oldest first: the evening before
    the run day (UTC), and EARLIER_DAYS before that when the spec has an earlier state."""
    midnight = dt.datetime.combine(run_day, dt.time(0), tzinfo=dt.UTC)
    latest = midnight - dt.timedelta(minutes=20 + 11 * index)
    result = []
    if spec.earlier is not None:
        result.append((latest - dt.timedelta(days=EARLIER_DAYS), spec.earlier))
    result.append((latest, spec.versions))
    return result


# --- Loading ------------------------------------------------------------------------------------


@dataclass
class Loaded:
    hosts: int = 0
    organisations: int = 0
    stored: int = 0
    duplicates: int = 0
    advisories: dict[str, dict[str, int]] = field(default_factory=dict)  # ImportRun.counts

    def summary(self) -> str:
        def read(kind: str) -> int:
            counts = self.advisories.get(kind) or {}
            return sum(counts.get(outcome, 0) for outcome in ("added", "changed", "unchanged"))

        new = sum(
            (self.advisories.get(kind) or {}).get(outcome, 0)
            for kind in ("osv", "kev", "eol")
            for outcome in ("added", "changed")
        )
        return _(
            "Demo hosts: %(hosts)d hosts in %(organisations)d organisations, %(stored)d "
            "collections stored, %(duplicates)d already stored; advisories: %(osv)d OSV records, "
            "%(kev)d KEV entries, %(eol)d life-cycle rows (%(new)d new or changed)."
        ) % {
            "hosts": self.hosts,
            "organisations": self.organisations,
            "stored": self.stored,
            "duplicates": self.duplicates,
            "osv": read("osv"),
            "kev": read("kev"),
            "eol": read("eol"),
            "new": new,
        }


def import_advisories() -> dict[str, dict[str, int]]:
    """Import the bundled advisories with the real importer (``mamori advisories import``);
    returns the run's counts by kind and outcome."""
    call_command("advisories", "import", str(ADVISORIES), "--quiet", stdout=io.StringIO())
    run = ImportRun.objects.order_by("-pk").first()
    return dict(run.counts) if run is not None else {}


def _uploader(organisation: Organisation):
    membership = (
        Membership.objects.filter(organisation=organisation, role=Role.APPLICANT_ADMIN)
        .select_related("user")
        .order_by("pk")
        .first()
    )
    return membership.user if membership else None


def build(specs: tuple[Spec, ...] = HOSTS, *, now: dt.datetime | None = None) -> Loaded:
    """Import the bundled advisories, then upload the demo hosts' evidence (idempotent)."""
    loaded = Loaded(advisories=import_advisories())
    run_day = (now or timezone.now()).astimezone(dt.UTC).date()
    organisations: dict[str, Organisation | None] = {}
    for index, spec in enumerate(specs):
        if spec.organisation not in organisations:
            organisations[spec.organisation] = Organisation.objects.filter(
                name_en=spec.organisation
            ).first()
        organisation = organisations[spec.organisation]
        user = _uploader(organisation) if organisation is not None else None
        if user is None:
            continue
        planned = collections(spec, run_day, index)
        known = Host.objects.filter(
            organisation=organisation, identity=identity_key(machine_id(spec), spec.hostname)
        ).exists()
        if known:
            planned = planned[-1:]  # the history is there already: only check in again
        for collected, versions in planned:
            evidence = collect_host(spec, versions, collected)
            raw = json.dumps(evidence, ensure_ascii=False).encode("utf-8")
            outcome = accept_upload(AgentUpload(organisation=organisation, body=raw, user=user))
            if outcome.duplicate:
                loaded.duplicates += 1
            else:
                loaded.stored += 1
        loaded.hosts += 1
    loaded.organisations = sum(1 for value in organisations.values() if value is not None)
    return loaded
