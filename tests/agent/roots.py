"""Root filesystems for ``mamori-agent collect --root``: a Debian 12 server, an Alpine host and a
Rocky Linux 9 host, built in temporary directories from real data where there is some (the dpkg
status of a real Debian 12 machine, an rpm database written by the rpm tool itself)."""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from pathlib import Path

from tests.datafiles import DEBIAN12_OS_RELEASE, DEBIAN12_STATUS, DEBIAN12_VERSION

# ClamAV database headers as sigtool writes them: 512 bytes, ":"-separated, space padded.
MAIN_CVD_HEADER = (
    "ClamAV-VDB:16 Sep 2021 08-32 -0400:62:6647427:90:3a2cbd8ba2d1cb18b2e4d25fa4ab0c56"
    ":X0r3gKq0dcS8i8v4ZPZp9lHOuBlzm8e5ewWRHvBSvXm0DeXnfQdvmSbLQwpJXq7MsfB4JCSTHgPxKk9MKZ0dKp2"
    ":sigmgr:1631795530"
)
DAILY_CLD_HEADER = "ClamAV-VDB:25 Nov 2026 07-51 +0000:27832:2071950:90:X:X:raynman"

# Hashes in the crypt(3) formats (made up, never real passwords). The evidence must not
# contain any of them.
HASHES = {
    "alice": "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7",
    "bob": "$6$rounds=5000$saltsaltsalt$Hf9zS6n1x0nQ8yXQb6vPp1E0eP4dN3wM1yH6zZ5oQb6lQ2rX9uT7kF8sV3cJ0gA4hB2nM5pL1qR7tY9wE3uI6o0",
    "dave": "$1$abcdefgh$Vh0bJ9RY0t2pmXH1F2C8A/",
    "frank": "abJnggxhB/yWI",
    "toor": "$5$saltsalt$LmNoPqRsTuVwXyZ0123456789abcdefghijklmnopqr",
}


def write(root: Path, path: str, content: str | bytes, mode: int | None = None) -> Path:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        target.write_text(textwrap.dedent(content).lstrip("\n"))
    else:
        target.write_bytes(content)
    if mode is not None:
        target.chmod(mode)
    return target


def link(root: Path, path: str, target: str) -> None:
    entry = root / path.lstrip("/")
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.symlink_to(target)


def cvd(header: str, body: bytes = b"\x1f\x8b\x08\x00payload") -> bytes:
    return header.encode("ascii").ljust(512, b" ") + body


def _enable(root: Path, target: str, unit: str, source: str | None = None) -> None:
    link(
        root, f"/etc/systemd/system/{target}.wants/{unit}", source or f"/lib/systemd/system/{unit}"
    )


EXTRA_DPKG = """
Package: unattended-upgrades
Status: install ok installed
Priority: optional
Section: admin
Installed-Size: 400
Maintainer: Debian
Architecture: all
Version: 2.9.1+nmu3
Description: automatic installation of security upgrades

Package: clamav
Status: install ok installed
Architecture: amd64
Source: clamav (1.0.7+dfsg-1~deb12u1)
Version: 1.0.7+dfsg-1~deb12u1+b1
Description: anti-virus utility for Unix - command-line interface

Package: restic
Status: hold ok installed
Architecture: amd64
Version: 0.14.0-1+b5
Source: restic (0.14.0-1)
Description: backup program with multiple revisions, encryption and more

Package: telnetd
Status: deinstall ok config-files
Architecture: amd64
Version: 0.17+2.4-2
Description: removed, only its configuration files remain
"""


def build_debian(root: Path) -> Path:
    """A Debian 12 server with hardening of every kind the agent reads."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(DEBIAN12_OS_RELEASE, root / "os-release.tmp")
    write(root, "/usr/lib/os-release", (root / "os-release.tmp").read_bytes())
    (root / "os-release.tmp").unlink()
    link(root, "/etc/os-release", "../usr/lib/os-release")
    write(root, "/etc/debian_version", DEBIAN12_VERSION.read_bytes())
    # merged /usr, as Debian 12 installs it
    for directory in ("lib", "sbin", "bin"):
        (root / "usr" / directory).mkdir(parents=True, exist_ok=True)
        link(root, f"/{directory}", f"usr/{directory}")
    write(root, "/usr/lib/systemd/systemd", b"\x7fELF not really")
    link(root, "/usr/sbin/init", "/lib/systemd/systemd")
    for binary in ("/usr/sbin/sshd", "/usr/sbin/nft", "/usr/bin/rclone"):
        write(root, binary, b"\x7fELF")
    for release in ("6.1.0-9-amd64", "6.1.0-13-amd64", "6.1.0-10-amd64"):
        (root / "usr/lib/modules" / release / "kernel").mkdir(parents=True)
    write(root, "/boot/vmlinuz-6.1.0-13-amd64", b"kernel")
    write(root, "/etc/hostname", "bank-web-01\n")
    write(root, "/etc/hosts", "127.0.0.1 localhost\n10.0.0.5 bank-web-01.example.jp bank-web-01\n")
    write(root, "/etc/machine-id", "0123456789abcdef0123456789abcdef\n")
    write(
        root, "/etc/services", "ssh 22/tcp\nhttp 80/tcp www\nhttps 443/tcp\nwireguard 51820/udp\n"
    )

    status = DEBIAN12_STATUS.read_text()
    write(root, "/var/lib/dpkg/status", status.rstrip("\n") + "\n\n" + EXTRA_DPKG.lstrip("\n"))
    write(
        root,
        "/var/lib/dpkg/info/python3-yaml.list",
        "/.\n/usr\n/usr/lib/python3/dist-packages\n"
        "/usr/lib/python3/dist-packages/PyYAML-6.0.dist-info\n"
        "/usr/lib/python3/dist-packages/PyYAML-6.0.dist-info/METADATA\n",
    )
    write(
        root,
        "/usr/lib/python3/dist-packages/PyYAML-6.0.dist-info/METADATA",
        "Metadata-Version: 2.1\nName: PyYAML\nVersion: 6.0\n\nYAML parser\nName: not-this\n",
    )
    write(
        root,
        "/usr/lib/python3/dist-packages/python_apt-2.6.0.egg-info",
        "Metadata-Version: 1.1\nName: python-apt\nVersion: 2.6.0\n",
    )
    write(
        root,
        "/usr/local/lib/python3.11/dist-packages/requests-2.31.0.dist-info/METADATA",
        "Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\n",
    )
    write(
        root, "/usr/local/lib/python3.11/dist-packages/requests-2.31.0.dist-info/INSTALLER", "pip\n"
    )
    write(
        root,
        "/usr/local/lib/python3.11/dist-packages/Django_Extensions-3.2.3.dist-info/METADATA",
        "Name: Django_Extensions\nVersion: 3.2.3\n",
    )

    write(
        root,
        "/etc/ssh/sshd_config",
        """
        # Debian's layout: the drop-in directory first, so that it wins
        Include /etc/ssh/sshd_config.d/*.conf
        PermitRootLogin yes
        Port 22
        Port 2222
        PasswordAuthentication Yes
        KbdInteractiveAuthentication no
        UsePAM yes
        AllowUsers alice bob
        AllowUsers deploy
        X11Forwarding=yes
        Match User backup Address 10.0.0.0/8
            PasswordAuthentication yes
            PermitRootLogin no
        Match all
        """,
    )
    write(root, "/etc/ssh/sshd_config.d/10-hardening.conf", "PermitRootLogin no\nMaxAuthTries 3\n")
    write(root, "/etc/ssh/sshd_config.d/README", "PermitRootLogin yes\n")  # not *.conf
    write(root, "/etc/ssh/sshd_config.d/20-ciphers.conf", 'Ciphers "aes256-gcm@openssh.com"\n')

    passwd = """
        root:x:0:0:root:/root:/bin/bash
        daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
        sync:x:4:65534:sync:/bin:/bin/sync
        toor:x:0:0:second root:/root:/bin/sh
        alice:x:1000:1000:Alice:/home/alice:/bin/bash
        bob:x:1001:1001:Bob:/home/bob:/bin/bash
        carol:x:1002:1002:Carol:/home/carol:/bin/bash
        dave:x:1003:1003:Dave:/home/dave:/bin/bash
        erin:x:1004:1004:Erin:/home/erin:/bin/bash
        frank:x:1005:1500:Frank:/home/frank:
        deploy:x:1006:1006:Deploy:/srv/app:/bin/bash
        legacy:x:1007:1007:no shadow entry:/home/legacy:/bin/bash
        oldstyle::1008:1008:empty password in passwd:/home/oldstyle:/bin/bash
        svc:x:998:998:service:/nonexistent:/usr/sbin/nologin
        broken line without fields
        """
    write(root, "/etc/passwd", passwd)
    write(
        root,
        "/etc/shadow",
        f"""
        root:*:19500:0:99999:7:::
        daemon:*:19500:0:99999:7:::
        sync:*:19500:0:99999:7:::
        toor:{HASHES["toor"]}:19500:0:99999:7:::
        alice:{HASHES["alice"]}:19500:0:99999:7:::
        bob:{HASHES["bob"]}:19500:0:99999:7:::
        carol::19500:0:99999:7:::
        dave:{HASHES["dave"]}:19500:0:99999:7:::
        erin:!{HASHES["alice"]}:19500:0:99999:7:::
        frank:{HASHES["frank"]}:19500:0:99999:7:::
        deploy:!!:19500:0:99999:7:::
        svc:!:19500::::::
        """,
        mode=0o640,
    )
    write(
        root,
        "/etc/group",
        """
        root:x:0:
        sudo:x:27:alice
        admins:x:1500:
        alice:x:1000:
        deploy:x:1006:
        """,
    )
    write(
        root,
        "/etc/sudoers",
        """
        Defaults\tenv_reset
        Defaults:deploy !authenticate
        Cmnd_Alias EVERYTHING = ALL
        User_Alias OPS = dave, \\
                         erin
        root\tALL=(ALL:ALL) ALL
        %sudo\tALL=(ALL:ALL) ALL
        %#1500 ALL = (root) EVERYTHING
        @includedir /etc/sudoers.d
        """,
        mode=0o440,
    )
    write(
        root,
        "/etc/sudoers.d/90-deploy",
        """
        deploy ALL=(root) NOPASSWD: /usr/bin/systemctl restart app, PASSWD: /usr/bin/journalctl
        OPS ALL=(ALL) NOPASSWD: EVERYTHING
        bob, carol ALL=(postgres) /usr/bin/psql
        """,
    )
    write(root, "/etc/sudoers.d/README.txt", "this is not sudoers and is skipped\n")
    write(root, "/etc/sudoers.d/90-deploy~", "mallory ALL=(ALL) NOPASSWD: ALL\n")

    write(
        root,
        "/etc/pam.d/common-auth",
        """
        auth\trequired\tpam_faillock.so preauth silent deny=3 unlock_time=600
        auth\t[success=1 default=ignore]\tpam_unix.so nullok
        auth\t[default=die]\tpam_faillock.so authfail
        auth\trequisite\tpam_deny.so
        """,
    )
    write(root, "/etc/security/faillock.conf", "# deny = 10\ndeny = 5\nfail_interval = 300\n")
    write(
        root,
        "/etc/pam.d/common-password",
        """
        password\trequisite\tpam_pwquality.so retry=3
        password\t[success=1 default=ignore]\tpam_unix.so obscure use_authtok yescrypt
        """,
    )
    write(root, "/etc/security/pwquality.conf", "minlen = 12\n# dictcheck = 0\n")
    write(root, "/etc/security/pwquality.conf.d/50-local.conf", "minlen = 14\nenforce_for_root\n")
    write(root, "/etc/login.defs", "PASS_MIN_LEN\t10\nENCRYPT_METHOD YESCRYPT\n")

    write(
        root,
        "/etc/nftables.conf",
        """
        #!/usr/sbin/nft -f
        flush ruleset
        define SSH_PORT = 22
        include "/etc/nftables.d/*.nft"
        table inet filter {
            set web {
                type inet_service
                elements = { http, 443 }
            }
            chain input {
                type filter hook input priority filter; policy drop;
                iif lo accept
                ct state established,related accept
                ip saddr 10.0.0.0/8 tcp dport $SSH_PORT accept comment "admins"
                tcp dport @web counter accept
                icmp type echo-request accept
                jump extra
            }
            chain extra {
                udp dport 51820 accept
                tcp dport { 8000-8080, 9100 } ip saddr { 192.0.2.0/24, 198.51.100.7 } accept
            }
            chain forward {
                type filter hook forward priority filter; policy drop;
            }
        }
        """,
    )
    write(
        root,
        "/etc/nftables.d/monitoring.nft",
        """
        table ip monitoring {
            chain input {
                type filter hook input priority 10; policy accept;
                tcp dport 9999 accept
            }
        }
        """,
    )
    write(root, "/etc/ufw/ufw.conf", "# installed, never enabled\nENABLED=no\nLOGLEVEL=low\n")
    write(root, "/etc/default/ufw", 'IPV6=yes\nDEFAULT_INPUT_POLICY="DROP"\n')
    write(
        root,
        "/etc/ufw/user.rules",
        """
        *filter
        :ufw-user-input - [0:0]
        ### RULES ###

        ### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in
        -A ufw-user-input -p tcp --dport 22 -j ACCEPT
        ### tuple ### allow any 53 0.0.0.0/0 any 10.0.0.0/8 in
        ### tuple ### deny tcp 23 0.0.0.0/0 any 0.0.0.0/0 in
        ### tuple ### allow tcp 80,443 0.0.0.0/0 any 0.0.0.0/0 out
        COMMIT
        """,
    )

    write(
        root,
        "/etc/apt/apt.conf.d/20auto-upgrades",
        """
        APT::Periodic::Update-Package-Lists "1";
        APT::Periodic::Unattended-Upgrade "1";
        """,
    )
    write(
        root,
        "/etc/apt/apt.conf.d/50unattended-upgrades",
        """
        // Automatically upgrade packages from these origin patterns
        Unattended-Upgrade::Origins-Pattern {
                "origin=Debian,codename=${distro_codename},label=Debian";
                "origin=Debian,codename=${distro_codename},label=Debian-Security";
        //      "o=Debian,a=proposed-updates";
        };
        /* a block comment with "quotes" */
        Unattended-Upgrade::Automatic-Reboot "false";
        """,
    )
    write(root, "/etc/apt/apt.conf.d/99disable.bak", 'APT::Periodic::Unattended-Upgrade "0";\n')
    write(
        root, "/etc/apt/apt.conf.d/10periodic", 'APT { Periodic { Update-Package-Lists "0"; }; };\n'
    )
    write(
        root,
        "/etc/apt/sources.list",
        """
        deb [signed-by=/usr/share/keyrings/example.gpg] http://deb.example.jp/debian bookworm main contrib
        # deb http://old.example.jp/debian buster main
        deb-src http://deb.debian.org/debian bookworm main
        """,
    )
    write(
        root,
        "/etc/apt/sources.list.d/debian.sources",
        """
        Types: deb
        URIs: http://deb.debian.org/debian
        Suites: bookworm bookworm-updates
        Components: main
        Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

        Types: deb
        URIs: http://deb.debian.org/debian-security
        Suites: bookworm-security
        Components: main

        Types: deb
        URIs: http://disabled.example.jp/debian
        Suites: bookworm
        Components: main
        Enabled: no
        """,
    )

    write(root, "/var/lib/clamav/main.cvd", cvd(MAIN_CVD_HEADER))
    write(root, "/var/lib/clamav/daily.cld", cvd(DAILY_CLD_HEADER))
    write(root, "/var/lib/clamav/bytecode.cvd", b"not a database at all")
    write(root, "/etc/clamav/freshclam.conf", "DatabaseDirectory /var/lib/clamav\n")
    write(
        root,
        "/etc/clamav/clamd.conf",
        "LocalSocket /run/clamav/clamd.ctl\nOnAccessIncludePath /home\n",
    )
    write(root, "/etc/fapolicyd/fapolicyd.conf", "permissive = 1\nq_size = 800\n")

    for unit in (
        "nftables.service",
        "ssh.service",
        "clamav-daemon.service",
        "clamav-freshclam.service",
        "wazuh-agent.service",
    ):
        _enable(root, "multi-user.target", unit)
    _enable(root, "timers.target", "restic-backup.timer", "/etc/systemd/system/restic-backup.timer")
    _enable(root, "timers.target", "apt-daily-upgrade.timer")
    write(root, "/etc/systemd/system/restic-backup.timer", "[Timer]\nOnCalendar=daily\n")
    write(
        root,
        "/etc/systemd/system/restic-backup.service",
        "[Service]\nExecStart=/usr/bin/restic backup /srv\n",
    )
    link(root, "/etc/systemd/system/telnet.socket", "/dev/null")
    write(
        root,
        "/etc/cron.d/rclone-sync",
        "# m h dom mon dow user command\n0 3 * * * root rclone sync /srv remote:\n",
    )
    write(root, "/etc/cron.d/commented", "# 0 4 * * * root borg create ::x /srv\n")
    return root


def build_alpine(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    write(
        root,
        "/etc/os-release",
        """
        NAME="Alpine Linux"
        ID=alpine
        VERSION_ID=3.19.1
        PRETTY_NAME="Alpine Linux v3.19"
        HOME_URL="https://alpinelinux.org/"
        """,
    )
    write(root, "/etc/alpine-release", "3.19.1\n")
    write(root, "/etc/apk/arch", "x86_64\n")
    write(
        root,
        "/lib/apk/db/installed",
        """
        C:Q1pa7Cj0vXq6i1uxu6sGB8VHx2+HA=
        P:musl
        V:1.2.4_git20230717-r4
        A:x86_64
        S:407558
        I:655360
        T:the musl c library (libc) implementation
        U:https://musl.libc.org/
        L:MIT
        o:musl
        m:Timo Teräs <timo.teras@iki.fi>
        t:1705352592
        c:a73ad4f4a06e4c7d8e7f8c9b1d7ab63f14f26fd6
        F:lib
        R:ld-musl-x86_64.so.1

        C:Q1ElKOqbKWWeMx6Aj8xJmQZtrFkaA=
        P:openssh-server
        V:9.6_p1-r0
        A:x86_64
        o:openssh
        F:usr/sbin
        R:sshd

        C:Q1bbYWD9CUzdVvYQxA5GXg4cYp3Dc=
        P:py3-yaml
        V:6.0.1-r1
        A:x86_64
        o:py-yaml
        F:usr/lib/python3.11/site-packages/PyYAML-6.0.1.dist-info
        R:METADATA

        C:Q1m7Y0bsiFPHwR4tz6rhTq8h7lS7E=
        P:clamav
        V:1.2.1-r0
        A:x86_64
        """,
    )
    write(
        root,
        "/usr/lib/python3.11/site-packages/PyYAML-6.0.1.dist-info/METADATA",
        "Name: PyYAML\nVersion: 6.0.1\n",
    )
    write(
        root,
        "/usr/lib/python3.11/site-packages/Flask-3.0.0.dist-info/METADATA",
        "Name: Flask\nVersion: 3.0.0\n",
    )
    write(root, "/usr/lib/python3.11/site-packages/Flask-3.0.0.dist-info/INSTALLER", "pip\n")
    write(root, "/bin/busybox", b"\x7fELF")
    link(root, "/sbin/init", "/bin/busybox")
    write(root, "/sbin/openrc", b"\x7fELF")
    write(root, "/etc/inittab", "::sysinit:/sbin/openrc sysinit\n")
    for runlevel, service in (
        ("default", "sshd"),
        ("default", "clamd"),
        ("default", "freshclam"),
        ("boot", "iptables"),
    ):
        link(root, f"/etc/runlevels/{runlevel}/{service}", f"/etc/init.d/{service}")
    write(
        root, "/etc/periodic/daily/apk-autoupgrade", "#!/bin/sh\napk upgrade --update --no-cache\n"
    )
    write(
        root,
        "/etc/iptables/rules-save",
        """
        *filter
        :INPUT DROP [0:0]
        :FORWARD DROP [0:0]
        :OUTPUT ACCEPT [0:0]
        [12:3456] -A INPUT -i lo -j ACCEPT
        -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
        -A INPUT -p tcp -m tcp --dport 22 -m comment --comment "ssh from anywhere" -j ACCEPT
        -A INPUT -s 192.168.1.0/24 -p tcp -m multiport --dports 80,443,8000:8010 -j ACCEPT
        -A INPUT -p icmp -j ACCEPT
        COMMIT
        """,
    )
    write(
        root,
        "/etc/passwd",
        "root:x:0:0:root:/root:/bin/ash\nalice:x:1000:1000::/home/alice:/bin/ash\n",
    )
    write(root, "/etc/shadow", f"root:*::0:::::\nalice:{HASHES['bob']}:19000:0:99999:7:::\n")
    write(root, "/etc/group", "root:x:0:root\nwheel:x:10:root,alice\nalice:x:1000:\n")
    write(
        root,
        "/etc/ssh/sshd_config",
        "PermitRootLogin prohibit-password\nAuthorizedKeysFile .ssh/authorized_keys\n",
    )
    write(root, "/var/lib/clamav/daily.cvd", cvd(DAILY_CLD_HEADER))
    return root


RPM_SPEC = """
Name: {name}
Version: {version}
Release: {release}
{epoch}
Summary: test package for the agent
License: MIT
{buildarch}
%description
A package built by the agent's tests.
{subpackage}
%install
mkdir -p %{{buildroot}}/usr/share/{name}
echo {name} > %{{buildroot}}/usr/share/{name}/README
{extra_install}
%files
/usr/share/{name}/README
{extra_files}
{subpackage_files}
"""


def rpm_tools() -> tuple[str, str]:
    rpm, rpmbuild = shutil.which("rpm"), shutil.which("rpmbuild")
    if not rpm or not rpmbuild:
        raise RuntimeError(
            "the agent's rpm tests need the rpm tools (Debian package 'rpm': apt-get install rpm; "
            "it is in the Makefile's TEST_PACKAGES)"
        )
    return rpm, rpmbuild


def build_rpms(workdir: Path) -> list[Path]:
    """Real rpm packages, built with rpmbuild: one with an epoch and a subpackage, one
    without an epoch owning a Python distribution, one named like dnf-automatic."""
    _rpm, rpmbuild = rpm_tools()
    specs = {
        "mamori-tiny": {
            "version": "1.2.3",
            "release": "4.el9",
            "epoch": "Epoch: 2",
            "buildarch": "",
            "subpackage": "%package -n mamori-tiny-libs\nSummary: libs\n%description -n mamori-tiny-libs\nlibs\n",
            "extra_install": "mkdir -p %{buildroot}/usr/lib64/mamori-tiny && echo x > %{buildroot}/usr/lib64/mamori-tiny/lib.so",
            "extra_files": "",
            "subpackage_files": "%files -n mamori-tiny-libs\n/usr/lib64/mamori-tiny/lib.so\n",
        },
        "python3-tinylib": {
            "version": "1.0",
            "release": "1.el9",
            "epoch": "",
            "buildarch": "BuildArch: noarch",
            "subpackage": "",
            "extra_install": (
                "mkdir -p %{buildroot}/usr/lib/python3.9/site-packages/tinylib-1.0.dist-info && "
                "printf 'Name: tinylib\\nVersion: 1.0\\n' > "
                "%{buildroot}/usr/lib/python3.9/site-packages/tinylib-1.0.dist-info/METADATA"
            ),
            "extra_files": "/usr/lib/python3.9/site-packages/tinylib-1.0.dist-info",
            "subpackage_files": "",
        },
        "dnf-automatic": {
            "version": "4.14.0",
            "release": "9.el9",
            "epoch": "",
            "buildarch": "BuildArch: noarch",
            "subpackage": "",
            "extra_install": "",
            "extra_files": "",
            "subpackage_files": "",
        },
    }
    topdir = workdir / "rpmbuild"
    for name, fields in specs.items():
        spec = topdir / "SPECS" / f"{name}.spec"
        spec.parent.mkdir(parents=True, exist_ok=True)
        spec.write_text(RPM_SPEC.format(name=name, **fields))
        subprocess.run(
            [rpmbuild, "--define", f"_topdir {topdir}", "--quiet", "-bb", str(spec)],
            check=True,
            capture_output=True,
        )
    return sorted((topdir / "RPMS").rglob("*.rpm"))


def install_rpms(packages: list[Path], dbpath: Path) -> None:
    rpm, _rpmbuild = rpm_tools()
    dbpath.mkdir(parents=True, exist_ok=True)
    subprocess.run([rpm, "--dbpath", str(dbpath), "--initdb"], check=True, capture_output=True)
    subprocess.run(
        [
            rpm,
            "--dbpath",
            str(dbpath),
            "-i",
            "--justdb",
            "--nodeps",
            "--noscripts",
            "--ignorearch",
            *map(str, packages),
        ],
        check=True,
        capture_output=True,
    )


def build_rocky(root: Path, packages: list[Path]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    write(
        root,
        "/etc/os-release",
        """
        NAME="Rocky Linux"
        VERSION="9.3 (Blue Onyx)"
        ID="rocky"
        ID_LIKE="rhel centos fedora"
        VERSION_ID="9.3"
        PRETTY_NAME="Rocky Linux 9.3 (Blue Onyx)"
        """,
    )
    write(root, "/etc/redhat-release", "Rocky Linux release 9.3 (Blue Onyx)\n")
    install_rpms(packages, root / "usr/lib/sysimage/rpm")
    link(root, "/var/lib/rpm", "../../usr/lib/sysimage/rpm")
    write(
        root,
        "/usr/lib/python3.9/site-packages/tinylib-1.0.dist-info/METADATA",
        "Name: tinylib\nVersion: 1.0\n",
    )
    write(
        root,
        "/usr/local/lib/python3.9/site-packages/ansible_core-2.14.2.dist-info/METADATA",
        "Name: ansible-core\nVersion: 2.14.2\n",
    )
    write(
        root,
        "/usr/local/lib/python3.9/site-packages/ansible_core-2.14.2.dist-info/INSTALLER",
        "pip\n",
    )
    write(root, "/usr/lib/systemd/systemd", b"\x7fELF")
    link(root, "/sbin", "usr/sbin")
    link(root, "/lib", "usr/lib")
    link(root, "/usr/sbin/init", "../lib/systemd/systemd")
    write(root, "/etc/dnf/dnf.conf", "[main]\ngpgcheck=1\n")
    write(
        root,
        "/etc/dnf/automatic.conf",
        """
        [commands]
        upgrade_type = security
        random_sleep = 0
        download_updates = yes
        apply_updates = no
        """,
    )
    for unit in (
        "firewalld.service",
        "fapolicyd.service",
        "falcon-sensor.service",
        "sshd.service",
        "clamd@scan.service",
    ):
        _enable(root, "multi-user.target", unit, f"/usr/lib/systemd/system/{unit}")
    _enable(
        root,
        "timers.target",
        "dnf-automatic-install.timer",
        "/usr/lib/systemd/system/dnf-automatic-install.timer",
    )
    write(root, "/etc/firewalld/firewalld.conf", "DefaultZone=public\nFirewallBackend=nftables\n")
    write(
        root,
        "/usr/lib/firewalld/zones/public.xml",
        """
        <?xml version="1.0" encoding="utf-8"?>
        <zone>
          <short>Public</short>
          <service name="ssh"/>
          <service name="dhcpv6-client"/>
          <service name="cockpit"/>
        </zone>
        """,
    )
    write(
        root,
        "/etc/firewalld/zones/public.xml",
        """
        <?xml version="1.0" encoding="utf-8"?>
        <zone target="default">
          <short>Public</short>
          <service name="ssh"/>
          <service name="https"/>
          <port port="8443" protocol="tcp"/>
          <port port="60000-61000" protocol="udp"/>
          <rule family="ipv4">
            <source address="10.0.0.0/8"/>
            <port port="5432" protocol="tcp"/>
            <accept/>
          </rule>
          <rule family="ipv4">
            <source address="192.0.2.1"/>
            <port port="6379" protocol="tcp"/>
            <drop/>
          </rule>
        </zone>
        """,
    )
    write(
        root,
        "/usr/lib/firewalld/services/ssh.xml",
        '<?xml version="1.0" encoding="utf-8"?>\n<service><short>SSH</short><port protocol="tcp" port="22"/></service>\n',
    )
    write(
        root,
        "/usr/lib/firewalld/services/https.xml",
        '<?xml version="1.0" encoding="utf-8"?>\n<service><short>HTTPS</short><port protocol="tcp" port="443"/></service>\n',
    )
    write(
        root,
        "/etc/authselect/system-auth",
        """
        auth        required      pam_env.so
        auth        required      pam_faillock.so preauth silent
        auth        sufficient    pam_unix.so nullok
        auth        [default=die] pam_faillock.so authfail
        password    requisite     pam_pwquality.so local_users_only
        password    sufficient    pam_unix.so sha512 shadow nullok use_authtok
        """,
    )
    link(root, "/etc/pam.d/system-auth", "/etc/authselect/system-auth")
    write(root, "/etc/security/faillock.conf", "deny = 4\nunlock_time = never\n")
    write(
        root,
        "/etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n",
    )
    write(root, "/etc/shadow", f"root:!!:19000::::::\nalice:{HASHES['alice']}:19000:0:99999:7:::\n")
    write(root, "/etc/group", "root:x:0:\nwheel:x:10:alice\nalice:x:1000:\n")
    write(
        root,
        "/etc/sudoers",
        "root ALL=(ALL) ALL\n%wheel ALL=(ALL) ALL\n#includedir /etc/sudoers.d\n",
    )
    write(root, "/etc/fapolicyd/fapolicyd.conf", "permissive = 0\nintegrity = sha256\n")
    write(root, "/etc/clamd.d/scan.conf", "LocalSocket /run/clamd.scan/clamd.sock\n")
    return root


def build_escapes(root: Path, outside: Path) -> Path:
    """A root whose links try to leave it in every way the resolver must refuse."""
    root.mkdir(parents=True, exist_ok=True)
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "sshd_config").write_text("PermitRootLogin yes\n")
    (outside / "passwd").write_text("mallory:x:0:0::/root:/bin/sh\n")
    write(root, "/etc/os-release", "ID=debian\nVERSION_ID=12\n")
    # relative link climbing out of the root
    link(
        root, "/etc/passwd", "../../../../../../../../../../" + str(outside / "passwd").lstrip("/")
    )
    # an intermediate directory that is a link to outside (relative) and one absolute
    link(root, "/etc/ssh", os.path.relpath(outside, root / "etc"))
    link(root, "/etc/sudoers.d", str(outside))  # absolute: re-rooted, so it is missing inside
    write(root, "/etc/sudoers", "root ALL=(ALL) ALL\n@includedir /etc/sudoers.d\n")
    # a loop, and a link that only resolves outside
    link(root, "/etc/loop-a", "loop-b")
    link(root, "/etc/loop-b", "/etc/loop-a")
    link(root, "/etc/shadow", "/etc/loop-a")
    return root
