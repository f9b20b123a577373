"""The ``firewall`` section: nftables, iptables, ufw and firewalld."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree

from ..context import Section
from . import iptables, nft
from .netfilter import (
    Allowed,
    most_permissive,
    normalise_source,
    parse_services,
    port_value,
)
from .services import unit_active
from .util import key_values, parse_bool, unquote

NFT_CONFIGS = ("/etc/nftables.conf", "/etc/sysconfig/nftables.conf")
# Debian's netfilter-persistent, RHEL's iptables-services, Alpine's iptables init script.
IPTABLES_CONFIGS = {
    "ipv4": ("/etc/iptables/rules.v4", "/etc/sysconfig/iptables", "/etc/iptables/rules-save"),
    "ipv6": ("/etc/iptables/rules.v6", "/etc/sysconfig/ip6tables", "/etc/iptables/rules6-save"),
}
_XML_LIMIT = 1024 * 1024


def _installed(section: Section, program: str) -> bool:
    return any(
        section.kind(f"{directory}/{program}") == "file"
        for directory in ("/usr/sbin", "/sbin", "/usr/bin", "/bin")
    )


def _backend(
    name: str,
    active: bool | None,
    source: str,
    default: str | None,
    allowed: Allowed | None,
    detail: str,
) -> dict:
    return {
        "name": name,
        "active": active,
        "source": source,
        "default_inbound": default,
        "allowed_inbound": allowed.sorted() if allowed is not None else [],
        "detail": detail,
    }


def _family_detail(v4: str | None, v6: str | None) -> str:
    return f"IPv4 {v4 or 'not filtered'}, IPv6 {v6 or 'not filtered'}"


# -- nftables ---------------------------------------------------------------------------------


def _nft_include_reader(section: Section):
    def read(name: str) -> list[str]:
        pattern = name if name.startswith("/") else "/etc/" + name
        texts = []
        for path in section.glob(pattern):
            text = section.read_text(path)
            if text is not None:
                texts.append(text)
        return texts

    return read


def _nftables(section: Section, services: dict[str, int]) -> dict | None:
    ctx = section.ctx
    installed = _installed(section, "nft")
    if ctx.live and ctx.can_run("nft"):
        result = ctx.run("nft")
        if result.ok:
            loader = nft.Loader()
            loader.load_text(result.output or "")
            v4, v6, allowed, chains = nft.Analysis(loader.ruleset, services).input_defaults()
            return _backend(
                "nftables",
                chains > 0,
                "live",
                most_permissive([v4, v6]),
                allowed,
                f"{chains} input chain(s) in the kernel; {_family_detail(v4, v6)}",
            )
        section.command_error(result)
    for path in NFT_CONFIGS:
        text = section.read_text(path)
        if text is None:
            continue
        loader = nft.Loader(read=_nft_include_reader(section))
        loader.load_text(text)
        for problem in loader.problems:
            section.error(path, problem)
        v4, v6, allowed, chains = nft.Analysis(loader.ruleset, services).input_defaults()
        enabled = unit_active(ctx.facts, "nftables.service", "nftables")
        return _backend(
            "nftables",
            enabled and chains > 0,
            "config",
            most_permissive([v4, v6]),
            allowed,
            f"{path}: {chains} input chain(s); {_family_detail(v4, v6)}; "
            f"nftables service {'enabled' if enabled else 'not enabled'}",
        )
    if installed:
        if ctx.live:
            return _backend("nftables", None, "live", None, None, "ruleset could not be read")
        return _backend("nftables", False, "config", None, None, "nft installed, no ruleset file")
    return None


# -- iptables -----------------------------------------------------------------------------------


def _iptables_tables(section: Section, texts: dict[str, str]) -> dict:
    tables = {}
    for family, text in texts.items():
        table, problems = iptables.parse_save(text)
        for problem in problems:
            section.error(None, f"iptables ({family}): {problem}")
        if table is not None:
            tables[family] = table
    return tables


def _iptables_summary(tables: dict, services: dict[str, int]) -> tuple[str | None, Allowed, str]:
    allowed = Allowed()
    defaults: dict[str, str | None] = {"ipv4": None, "ipv6": None}
    for family, table in tables.items():
        default, family_allowed = iptables.input_effect(table, services)
        defaults[family] = default
        allowed.extend(family_allowed)
    return (
        most_permissive(list(defaults.values())),
        allowed,
        _family_detail(defaults["ipv4"], defaults["ipv6"]),
    )


def _iptables(section: Section, services: dict[str, int]) -> dict | None:
    ctx = section.ctx
    installed = _installed(section, "iptables")
    if ctx.live and ctx.can_run("iptables-save"):
        texts, failed = {}, False
        for family, key in (("ipv4", "iptables-save"), ("ipv6", "ip6tables-save")):
            if not ctx.can_run(key):
                continue
            result = ctx.run(key)
            if result.ok:
                texts[family] = result.output or ""
            else:
                section.command_error(result)
                failed = True
        if texts and not failed:
            tables = _iptables_tables(section, texts)
            active = any(iptables.has_rules(table) for table in tables.values())
            default, allowed, detail = _iptables_summary(tables, services)
            return _backend(
                "iptables",
                active,
                "live",
                default if active else None,
                allowed,
                "rules in the kernel; " + detail if active else "no filter rules in the kernel",
            )
    texts, files = {}, []
    for family, paths in IPTABLES_CONFIGS.items():
        for path in paths:
            text = section.read_text(path)
            if text is not None:
                texts[family] = text
                files.append(path)
                break
    if texts:
        tables = _iptables_tables(section, texts)
        enabled = unit_active(
            ctx.facts,
            "netfilter-persistent.service",
            "iptables.service",
            "ip6tables.service",
            "iptables",
            "ip6tables",
        )
        default, allowed, detail = _iptables_summary(tables, services)
        return _backend(
            "iptables",
            enabled and any(iptables.has_rules(table) for table in tables.values()),
            "config",
            default,
            allowed,
            f"{', '.join(files)}: {detail}; restore service "
            f"{'enabled' if enabled else 'not enabled'}",
        )
    if installed:
        if ctx.live:
            return _backend("iptables", None, "live", None, None, "rules could not be read")
        return _backend(
            "iptables", False, "config", None, None, "iptables installed, no rules file"
        )
    return None


# -- ufw ----------------------------------------------------------------------------------------


def _ufw(section: Section, services: dict[str, int]) -> dict | None:
    conf = section.read_text("/etc/ufw/ufw.conf", limit=1024 * 1024)
    if conf is None:
        return None
    enabled = parse_bool(key_values(conf).get("enabled"))
    defaults_text = section.read_text("/etc/default/ufw", limit=1024 * 1024)
    policy = None
    if defaults_text is not None:
        raw = unquote(key_values(defaults_text).get("default_input_policy", "")).upper()
        policy = {"DROP": "drop", "REJECT": "reject", "ACCEPT": "accept"}.get(raw)
    allowed = Allowed()
    for path in ("/etc/ufw/user.rules", "/etc/ufw/user6.rules"):
        text = section.read_text(path)
        if text is not None:
            iptables.parse_ufw_tuples(text, services, allowed)
    return _backend(
        "ufw",
        enabled,
        "config",
        policy,
        allowed,
        f"ufw {'enabled' if enabled else 'disabled'}; default input policy {policy or 'unknown'}",
    )


# -- firewalld ----------------------------------------------------------------------------------


def _xml(section: Section, path: str) -> ElementTree.Element | None:
    text = section.read_text(path, limit=_XML_LIMIT)
    if text is None:
        return None
    # No DTDs: entity expansion ("billion laughs") must not be possible with older expat.
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        section.error(path, "XML with a document type declaration is not read")
        return None
    try:
        return ElementTree.fromstring(text)  # noqa: S314 - no DTD, checked above
    except ElementTree.ParseError as error:
        section.error(path, f"malformed XML: {error}")
        return None


def _firewalld_file(section: Section, kind: str, name: str) -> str | None:
    if "/" in name or name.startswith("."):
        return None
    for base in ("/etc/firewalld", "/usr/lib/firewalld"):
        path = f"{base}/{kind}/{name}.xml"
        if section.exists(path):
            return path
    return None


def _firewalld_service_ports(
    section: Section, name: str, services: dict[str, int], cache: dict
) -> list[tuple[int | str, str]]:
    if name in cache:
        return cache[name]
    cache[name] = []
    path = _firewalld_file(section, "services", name)
    root = _xml(section, path) if path else None
    ports = []
    if root is not None:
        for element in root.iter("port"):
            port = port_value(element.get("port", ""), services)
            protocol = element.get("protocol", "tcp")
            if port is not None:
                ports.append((port, protocol if protocol in ("tcp", "udp") else "any"))
        for include in root.iter("include"):
            ports.extend(
                _firewalld_service_ports(section, include.get("service", ""), services, cache)
            )
    cache[name] = ports
    return ports


def _firewalld(section: Section, services: dict[str, int]) -> dict | None:
    conf_path = "/etc/firewalld/firewalld.conf"
    conf = section.read_text(conf_path, limit=1024 * 1024)
    if conf is None and not section.is_dir("/usr/lib/firewalld"):
        return None
    zone_name = unquote(key_values(conf or "").get("defaultzone", "")) or "public"
    zone_path = _firewalld_file(section, "zones", zone_name)
    root = _xml(section, zone_path) if zone_path else None
    active = unit_active(section.ctx.facts, "firewalld.service", "firewalld")
    if root is None:
        if zone_path is None:
            section.error(None, f"firewalld zone {zone_name!r} not found")
        return _backend("firewalld", active, "config", None, None, f"default zone {zone_name}")
    target = (root.get("target") or "default").upper()
    default = {"ACCEPT": "accept", "DROP": "drop"}.get(target, "reject")
    allowed = Allowed()
    cache: dict = {}
    for element in root.findall("service"):
        for port, protocol in _firewalld_service_ports(
            section, element.get("name", ""), services, cache
        ):
            allowed.add(port, protocol, "any")
    for element in root.findall("port"):
        port = port_value(element.get("port", ""), services)
        if port is not None:
            allowed.add(port, element.get("protocol", "any"), "any")
    for rule in root.findall("rule"):
        if rule.find("accept") is None:
            continue
        source_element = rule.find("source")
        source = "any"
        if source_element is not None:
            if source_element.get("invert", "").lower() in ("yes", "true"):
                source = "any"
            else:
                source = normalise_source(source_element.get("address"))
        for element in rule.findall("port"):
            port = port_value(element.get("port", ""), services)
            if port is not None:
                allowed.add(port, element.get("protocol", "any"), source)
        for element in rule.findall("service"):
            for port, protocol in _firewalld_service_ports(
                section, element.get("name", ""), services, cache
            ):
                allowed.add(port, protocol, source)
    return _backend(
        "firewalld",
        active,
        "config",
        default,
        allowed,
        f"default zone {zone_name} (target {target}); firewalld "
        f"{'enabled' if active else 'not enabled'}",
    )


def effective_default(backends: list[dict]) -> str | None:
    """A drop or reject in any active backend is final; ``accept`` only when every active
    backend is known to accept; ``None`` when nothing is known to be active."""
    active = [backend for backend in backends if backend["active"] is True]
    if not active:
        return None
    defaults = [backend["default_inbound"] for backend in active]
    if any(default in ("drop", "reject") for default in defaults):
        return "drop"
    if all(default == "accept" for default in defaults):
        return "accept"
    return None


def collect_firewall(section: Section) -> dict:
    services_text = section.read_text("/etc/services", limit=4 * 1024 * 1024)
    services = parse_services(services_text) if services_text else {}
    backends = []
    for reader in (_nftables, _iptables, _ufw, _firewalld):
        backend = reader(section, services)
        if backend is not None:
            backends.append(backend)
    allowed = Allowed()
    for backend in backends:
        if backend["active"] is True:
            for entry in backend["allowed_inbound"]:
                allowed.add(entry["port"], entry["protocol"], entry["source"])
    return section.finish(
        {
            "backends": backends,
            "default_inbound": effective_default(backends),
            "allowed_inbound": allowed.sorted(),
        }
    )
