"""The ``updates`` section: automatic updates (apt, dnf, apk) and the apt sources."""

from __future__ import annotations

import configparser
import re

from ..context import Section
from .packages import is_installed
from .services import unit_active
from .util import parse_bool

APT_CONF_DIR = "/etc/apt/apt.conf.d"
APT_CONF_MAIN = "/etc/apt/apt.conf"
SOURCES_LIST = "/etc/apt/sources.list"
SOURCES_DIR = "/etc/apt/sources.list.d"
_APT_PART_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")
_APT_TOKEN = re.compile(r'"[^"\n]*"|[{};]|[^\s{};"]+')
_ORIGIN_KEYS = ("unattended-upgrade::origins-pattern", "unattended-upgrade::allowed-origins")
_DNF_CONFIGS = ("/etc/dnf/automatic.conf", "/etc/dnf/dnf5-plugins/automatic.conf")
_DNF_TIMERS = (
    "dnf-automatic.timer",
    "dnf-automatic-install.timer",
    "dnf-automatic-download.timer",
    "dnf-automatic-notifyonly.timer",
    "dnf5-automatic.timer",
)
_APK_UPGRADE = re.compile(r"\bapk\b[^\n]*\bupgrade\b")


class AptConfig:
    """The subset of apt's configuration language that automatic updates use: ``A::B "v";``,
    nested ``A { B "v"; };`` blocks, lists of bare strings, ``Key:: "v";`` appends, comments and
    ``#clear``. Keys are case-insensitive, as in apt."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.lists: dict[str, list[str]] = {}

    @staticmethod
    def _strip_comments(text: str) -> str:
        text = re.sub(r"/\*.*?\*/", " ", text, flags=re.DOTALL)
        lines = []
        for line in text.splitlines():
            out, quoted, index = [], False, 0
            while index < len(line):
                char = line[index]
                if char == '"':
                    quoted = not quoted
                elif not quoted and line.startswith("//", index):
                    break
                elif not quoted and char == "#":
                    rest = line[index + 1 :]
                    if not rest.startswith(("clear", "include")):
                        break
                out.append(char)
                index += 1
            lines.append("".join(out))
        return "\n".join(lines)

    def feed(self, text: str) -> None:
        items = _APT_TOKEN.findall(self._strip_comments(text))
        prefixes: list[str] = []
        index = 0
        while index < len(items):
            item = items[index]
            following = items[index + 1] if index + 1 < len(items) else None
            if item == "}":
                if prefixes:
                    prefixes.pop()
                index += 1
            elif item == ";":
                index += 1
            elif item in ("#clear", "#include"):
                end = index + 1
                while end < len(items) and items[end] != ";":
                    end += 1
                if item == "#clear":
                    for name in items[index + 1 : end]:
                        self._clear("::".join([*prefixes, name.strip('"')]).lower())
                index = end + 1
            elif item.startswith('"'):  # a bare value inside a list block
                self._append("::".join(prefixes).lower(), item[1:-1])
                index += 1
            elif following == "{":
                prefixes.append(item.rstrip(":"))
                index += 2
            elif following is not None and following not in ("{", "}", ";"):
                value = following[1:-1] if following.startswith('"') else following
                key = "::".join([*prefixes, item]).lower()
                if key.endswith("::"):
                    self._append(key.rstrip(":"), value)
                else:
                    self.values[key] = value
                index += 2
            else:  # a bare word: a list entry
                if prefixes:
                    self._append("::".join(prefixes).lower(), item)
                index += 1

    def _append(self, key: str, value: str) -> None:
        self.lists.setdefault(key, []).append(value)

    def _clear(self, key: str) -> None:
        self.lists.pop(key, None)
        self.values.pop(key, None)


def periodic_enabled(value: str | None) -> bool:
    """APT::Periodic intervals: a number of days (``0`` disables), optionally with a unit, or
    ``always``. Absent means 0."""
    if value is None:
        return False
    value = value.strip().lower()
    if value == "always":
        return True
    match = re.match(r"^(\d+)\s*[smhd]?$", value)
    if match:
        return int(match.group(1)) != 0
    flag = parse_bool(value)
    return bool(flag)


def _apt_config_files(section: Section) -> list[str]:
    files = []
    for name in section.list_dir(APT_CONF_DIR):
        # apt reads only such names, and only without an extension or with ".conf".
        if _APT_PART_NAME.match(name) and ("." not in name or name.endswith(".conf")):
            files.append(f"{APT_CONF_DIR}/{name}")
    files.append(APT_CONF_MAIN)
    return files


def _unattended_upgrades(section: Section) -> dict:
    config = AptConfig()
    unreadable = False
    for path in _apt_config_files(section):
        before = len(section.errors)
        text = section.read_text(path, limit=4 * 1024 * 1024)
        if text is None:
            unreadable = unreadable or len(section.errors) > before
            continue
        config.feed(text)
    origins = []
    for key in _ORIGIN_KEYS:
        origins.extend(config.lists.get(key, []))
    return {
        "installed": is_installed(section.ctx.facts, "unattended-upgrades"),
        "enabled": None
        if unreadable
        else periodic_enabled(config.values.get("apt::periodic::unattended-upgrade")),
        "update_package_lists": None
        if unreadable
        else periodic_enabled(config.values.get("apt::periodic::update-package-lists")),
        "origins": origins,
    }


def parse_one_line_sources(text: str, path: str) -> list[dict]:
    entries = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        line = re.sub(r"\[[^\]]*\]", " ", line)  # [arch=amd64 signed-by=...] options
        fields = line.split()
        if len(fields) < 3 or fields[0] != "deb":
            continue
        entries.append(
            {"uri": fields[1], "suites": [fields[2]], "components": fields[3:], "file": path}
        )
    return entries


def parse_deb822_sources(text: str, path: str) -> list[dict]:
    entries = []
    stanzas: list[dict[str, str]] = [{}]
    last_key = None
    for raw in text.splitlines():
        if raw.startswith("#"):
            continue
        if not raw.strip():
            if stanzas[-1]:
                stanzas.append({})
            last_key = None
            continue
        if raw[0] in " \t" and last_key:
            stanzas[-1][last_key] += " " + raw.strip()
            continue
        key, found, value = raw.partition(":")
        if found:
            last_key = key.strip().lower()
            stanzas[-1][last_key] = value.strip()
    for stanza in stanzas:
        if "deb" not in stanza.get("types", "").split():
            continue
        if parse_bool(stanza.get("enabled", "yes")) is False:
            continue
        for uri in stanza.get("uris", "").split():
            entries.append(
                {
                    "uri": uri,
                    "suites": stanza.get("suites", "").split(),
                    "components": stanza.get("components", "").split(),
                    "file": path,
                }
            )
    return entries


def _apt_sources(section: Section) -> dict:
    entries = []
    text = section.read_text(SOURCES_LIST)
    if text is not None:
        entries.extend(parse_one_line_sources(text, SOURCES_LIST))
    for name in section.list_dir(SOURCES_DIR):
        path = f"{SOURCES_DIR}/{name}"
        if name.endswith(".list"):
            text = section.read_text(path)
            if text is not None:
                entries.extend(parse_one_line_sources(text, path))
        elif name.endswith(".sources"):
            text = section.read_text(path)
            if text is not None:
                entries.extend(parse_deb822_sources(text, path))
    esm = any("esm.ubuntu.com" in entry["uri"] for entry in entries)
    return {"entries": entries, "esm": esm}


def _dnf_automatic(section: Section) -> dict:
    facts = section.ctx.facts
    apply_updates = None
    upgrade_type = None
    found_config = False
    for path in _DNF_CONFIGS:
        text = section.read_text(path, limit=1024 * 1024)
        if text is None:
            continue
        found_config = True
        parser = configparser.ConfigParser(strict=False, interpolation=None)
        try:
            parser.read_string(text, source=path)
        except configparser.Error as error:
            section.error(path, "unparsable: " + str(error).splitlines()[0])
            continue
        if parser.has_section("commands"):
            apply_updates = parse_bool(parser.get("commands", "apply_updates", fallback="no"))
            upgrade_type = parser.get("commands", "upgrade_type", fallback="default").strip()
        break
    timers = [timer for timer in _DNF_TIMERS if unit_active(facts, timer)]
    if found_config and apply_updates is None:
        apply_updates = False  # dnf-automatic's default
    if "dnf-automatic-install.timer" in timers:
        apply_updates = True  # that timer runs with apply_updates forced on
    installed = is_installed(facts, "dnf-automatic", "dnf5-plugin-automatic")
    if installed is None and found_config:
        installed = True
    return {
        "installed": installed,
        "apply_updates": apply_updates,
        "upgrade_type": upgrade_type if found_config else None,
        "timer_enabled": bool(timers),
    }


def _apk_periodic(section: Section) -> dict | None:
    candidates = [*section.glob("/etc/periodic/*/*"), "/etc/crontabs/root"]
    for path in candidates:
        text = section.read_text(path, limit=1024 * 1024)
        if text is None:
            continue
        for line in text.splitlines():
            if line.strip().startswith("#"):
                continue
            if _APK_UPGRADE.search(line):
                return {"source": path}
    return None


def collect_updates(section: Section) -> dict:
    facts = section.ctx.facts
    installed = facts.get("installed") or {}
    apt_system = "dpkg" in installed or section.is_dir("/etc/apt")
    dnf_system = section.is_dir("/etc/dnf")
    apk_system = "apk" in installed or section.is_dir("/etc/apk")
    return section.finish(
        {
            "unattended_upgrades": _unattended_upgrades(section) if apt_system else None,
            "dnf_automatic": _dnf_automatic(section) if dnf_system else None,
            "apk_periodic": _apk_periodic(section) if apk_system else None,
            "apt_sources": _apt_sources(section) if apt_system else None,
        }
    )
