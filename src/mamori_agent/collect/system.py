"""The ``os`` section and the top-level ``host`` object."""

from __future__ import annotations

import os
import re
import shlex
import socket

from ..context import Section
from .util import version_key

_OS_RELEASE = ("/etc/os-release", "/usr/lib/os-release")
_MACHINE_ID = ("/etc/machine-id", "/var/lib/dbus/machine-id")
_MACHINE_ID_RE = re.compile(r"^[0-9a-f]{32}$")

# Debian/Alpine architecture names → the names ``uname -m`` prints, so that live and root
# evidence say the same thing.
_UNAME_ARCHITECTURES = {
    "amd64": "x86_64",
    "arm64": "aarch64",
    "armhf": "armv7l",
    "armel": "armv5tel",
    "armv7": "armv7l",
    "i386": "i686",
    "x86": "i686",
    "ppc64el": "ppc64le",
    "mips64el": "mips64",
    "riscv64": "riscv64",
    "s390x": "s390x",
}


def parse_os_release(text: str) -> dict[str, str]:
    """``KEY=value`` lines with shell quoting, as os-release(5) specifies."""
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            continue
        try:
            parts = shlex.split(raw, posix=True)
            value = " ".join(parts)
        except ValueError:
            value = raw.strip().strip("\"'")
        values[key] = value
    return values


def _first_line(section: Section, path: str) -> str | None:
    text = section.read_text(path, limit=64 * 1024)
    if text is None:
        return None
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    return line or None


def collect_os(section: Section) -> dict:
    ctx = section.ctx
    release: dict[str, str] | None = None
    for path in _OS_RELEASE:
        text = section.read_text(path, limit=1024 * 1024)
        if text is not None:
            release = parse_os_release(text)
            break
    if release is None:
        section.error(_OS_RELEASE[0], "no os-release file could be read")
        release = {}

    def value(key: str) -> str | None:
        text = release.get(key)
        return text if text else None

    kernels = set()
    for name in section.list_dir("/lib/modules"):
        if section.is_dir("/lib/modules/" + name):
            kernels.add(name)
    for path in section.glob("/boot/vmlinuz-*"):
        kernels.add(path.rsplit("/", 1)[1][len("vmlinuz-") :])
    installed_kernels = sorted(kernels, key=version_key)

    if ctx.live:
        uname = os.uname()
        kernel = {"release": uname.release, "version": uname.version}
    else:
        modules = sorted(
            (name for name in section.list_dir("/lib/modules") if name in kernels),
            key=version_key,
        )
        kernel = {"release": modules[-1] if modules else None, "version": None}

    return section.finish(
        {
            "id": value("ID"),
            "id_like": (value("ID_LIKE") or "").split(),
            "version_id": value("VERSION_ID"),
            "version_codename": value("VERSION_CODENAME"),
            "name": value("NAME"),
            "pretty_name": value("PRETTY_NAME"),
            "debian_version": _first_line(section, "/etc/debian_version"),
            "alpine_release": _first_line(section, "/etc/alpine-release"),
            "redhat_release": _first_line(section, "/etc/redhat-release"),
            "kernel": kernel,
            "installed_kernels": installed_kernels,
        }
    )


def _fqdn(section: Section, hostname: str | None) -> str | None:
    """The host's fully qualified name without a DNS query: the hostname itself when it has a
    dot, else the first dotted name on the ``/etc/hosts`` line that names the host."""
    if not hostname:
        return None
    if "." in hostname:
        return hostname
    text = section.read_text("/etc/hosts", limit=4 * 1024 * 1024)
    for line in (text or "").splitlines():
        names = line.split("#", 1)[0].split()[1:]
        if hostname in names:
            for name in names:
                if "." in name and name.split(".", 1)[0] == hostname:
                    return name
    return None


def collect_host(section: Section, architecture_from_packages: str | None) -> dict:
    """The ``host`` object. Its read errors go to the ``os`` section passed in."""
    ctx = section.ctx
    if ctx.live:
        hostname: str | None = socket.gethostname() or None
        architecture = os.uname().machine or None
    else:
        hostname = _first_line(section, "/etc/hostname")
        architecture = architecture_from_packages
    machine_id = None
    for path in _MACHINE_ID:
        line = _first_line(section, path)
        if line and _MACHINE_ID_RE.match(line):
            machine_id = line
            break
    return {
        "hostname": hostname,
        "machine_id": machine_id,
        "architecture": architecture,
        "fqdn": _fqdn(section, hostname),
    }


def uname_architecture(name: str | None) -> str | None:
    if not name:
        return None
    return _UNAME_ARCHITECTURES.get(name, name)
