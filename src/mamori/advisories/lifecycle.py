"""Is the host's OS, and the software it runs from outside the OS vendor, still supported?
Pure logic, no Django imports.

"Supported" means still receiving security updates from its vendor (issue 3):

- **Debian**: supported until the end of Debian LTS (``extended``), e.g. Debian 12: regular
  security support to 2026-07-11, LTS to 2028-06-30. Freexian's paid ELTS is not counted.
  (Debian LTS covers the main architectures and most, not all, packages; that is not modelled.)
- **Ubuntu**: supported until the end of standard support (``eol``); after it only when the host
  is enrolled in Ubuntu Pro/ESM (evidence ``updates.apt_sources.esm`` true), until the end of
  ESM (``extended``). Interim releases have no ESM.
- **Everything else** (RHEL, Rocky, Alma, Alpine, SLES, CentOS, Amazon Linux, Django, ...):
  endoflife.date's ``eol`` — the end of security support. Paid extensions (RHEL ELS, SLES LTSS)
  are not counted: a host cannot be seen to have bought them.

Which source, per product: Debian and Ubuntu use **distro-info** (Debian's distro-info-data),
falling back to endoflife.date for a release it lacks; every other product uses
**endoflife.date**. distro-info is the distributions' own machine-readable record, maintained by
their developers and shipped in the OS for its own tools (``debian-distro-info``,
``ubuntu-distro-info``, ``ubuntu-security-status``), so it is the vendor's word; endoflife.date
is a community summary and rounds or lags some dates (Ubuntu 22.04: endoflife.date says
standard support ends 2027-04-01 and ESM 2032-04-09; distro-info 2027-06-01 and 2032-04-21; for
Debian 12 both say 2026-07-11 and 2028-06-30). A product is supported through its end date
(inclusive).

Software from outside the vendor's packages: packages the OS vendor ships are supported as long
as the OS release is (Debian's openssl 3.0 gets fixes after upstream 3.0's end of life), so only
python distributions the vendor did not install (``matching.is_vendor_python`` is false, e.g.
``installer`` "pip") are checked, against the endoflife.date products that are the same
software as a PyPI project. Of the products in the data only **Django** is: ``python`` is the
interpreter, not a PyPI project; PyPI's ``redis``, ``mariadb``, ``docker`` and ``pyOpenSSL``
are client libraries or bindings with their own lifecycles, not the server or library the
endoflife.date product describes.

``reason`` is a fixed vocabulary the evaluation layer translates: ``regular``, ``lts``,
``esm`` (supported, on that basis), ``no_end_announced`` (supported, no end date published),
``ended`` (support is over), ``esm_not_enrolled`` (Ubuntu standard support is over and the host
is not enrolled in ESM, which would still cover it), ``os_not_recognised``, ``release_unknown``
(no release number, e.g. Debian testing/unstable), ``cycle_not_found`` (the lifecycle data has
no such release) — the last three with ``supported`` None (unknown).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from packaging.version import InvalidVersion, Version

from mamori.advisories import records
from mamori.advisories.matching import is_vendor_python, normalise_pypi_name

DISTRO_INFO = "distro-info"
ENDOFLIFE = "endoflife.date"

# os-release ID → endoflife.date product slug.
OS_PRODUCTS = {
    "debian": "debian",
    "ubuntu": "ubuntu",
    "rhel": "rhel",
    "rocky": "rocky-linux",
    "almalinux": "almalinux",
    "centos": "centos",
    "alpine": "alpine-linux",
    "amzn": "amazon-linux",
    "sles": "sles",
    "sles_sap": "sles",
}
# Preferred lifecycle source per product (module docstring); others: endoflife.date only.
SOURCE_PREFERENCE = {
    "debian": (DISTRO_INFO, ENDOFLIFE),
    "ubuntu": (DISTRO_INFO, ENDOFLIFE),
}
# PyPI project (PEP 503 name) → endoflife.date product that is the same software.
PYPI_PRODUCTS = {"django": "django"}


def os_support(
    evidence: Mapping[str, Any], cycles: Iterable[records.EolCycle], *, as_of: date
) -> dict:
    """Whether the host's OS release still receives security updates (module docstring)."""
    as_of = _day(as_of)
    os_section = _mapping(evidence.get("os"))
    os_id = _text(os_section.get("id")).lower()
    product = OS_PRODUCTS.get(os_id)
    if product is None:
        return _unknown(None, None, "os_not_recognised")
    cycle_name = _os_cycle(product, _text(os_section.get("version_id")))
    if not cycle_name:
        return _unknown(product, None, "release_unknown")
    cycle = _find_cycle(product, cycle_name, cycles)
    if cycle is None:
        return _unknown(product, cycle_name, "cycle_not_found")

    result = {
        "product": product,
        "cycle": cycle_name,
        "supported": True,
        "support_ends": None,
        "basis": "regular",
        "source": cycle.source,
        "reason": "regular",
    }
    if cycle.eol is None:
        result["reason"] = "no_end_announced"
        return result
    if as_of <= cycle.eol:
        result["support_ends"] = _support_end(product, cycle, evidence).isoformat()
        return result

    extended_end = _extended_end(product, cycle, evidence)
    if extended_end is not None and as_of <= extended_end:
        basis = "lts" if product == "debian" else "esm"
        result.update(support_ends=extended_end.isoformat(), basis=basis, reason=basis)
        return result
    ended_on: date | None = extended_end or cycle.eol
    reason = "ended"
    if product == "ubuntu" and cycle.extended is not None and not _esm_enrolled(evidence):
        if as_of <= cycle.extended:
            reason = "esm_not_enrolled"
        ended_on = cycle.eol
    if extended_end is None and cycle.eol_date_unknown:
        ended_on = None  # ended, but the source gives no date (``eol`` holds the release date)
    result.update(
        supported=False,
        support_ends=ended_on.isoformat() if ended_on else None,
        basis=None,
        reason=reason,
    )
    return result


def software_support(
    evidence: Mapping[str, Any], cycles: Iterable[records.EolCycle], *, as_of: date
) -> list[dict]:
    """The lifecycle of software installed from outside the OS vendor's packages that maps to
    an endoflife.date product (module docstring)."""
    as_of = _day(as_of)
    by_product: dict[str, dict[str, records.EolCycle]] = {}
    for cycle in cycles:
        if cycle.source == ENDOFLIFE and cycle.product in PYPI_PRODUCTS.values():
            by_product.setdefault(cycle.product, {})[cycle.cycle] = cycle
    items = _mapping(evidence.get("packages")).get("items")
    found = []
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, Mapping) or item.get("manager") != "python":
            continue
        name, version = _text(item.get("name")), _text(item.get("version"))
        product = PYPI_PRODUCTS.get(normalise_pypi_name(name))
        if product is None or not version or is_vendor_python(item):
            continue
        known = by_product.get(product, {})
        cycle_name = _version_cycle(version, known)
        cycle = known.get(cycle_name) if cycle_name else None
        if cycle is None:
            supported, eol = None, None
        elif cycle.eol is None:
            supported, eol = True, None
        else:
            supported, eol = as_of <= cycle.eol, cycle.eol.isoformat()
        found.append(
            {
                "package": normalise_pypi_name(name),
                "version": version,
                "product": product,
                "cycle": cycle_name,
                "eol": eol,
                "supported": supported,
                "installer": item.get("installer"),
                "location": item.get("location"),
            }
        )
    found.sort(key=lambda entry: (entry["package"], entry["version"], entry["location"] or ""))
    return found


def version_cycle(version: str, cycle_names: Iterable[str]) -> str | None:
    """The release cycle a version belongs to: the longest leading part of its release number
    that names a cycle ("3.2.25" → "3.2", "5.0" → "5.0", "5.0rc1" → "5.0", "4" → "4")."""
    return _version_cycle(version, set(cycle_names))


def _version_cycle(version: str, cycle_names: Mapping[str, Any] | set[str]) -> str | None:
    try:
        release = [str(part) for part in Version(version).release]
    except InvalidVersion:
        release = re.findall(r"\d+", version.split("-")[0])
    for length in range(len(release), 0, -1):
        candidate = ".".join(release[:length])
        if candidate in cycle_names:
            return candidate
    return None


def _os_cycle(product: str, version_id: str) -> str:
    if not version_id:
        return ""
    if product in ("debian", "rhel", "rocky-linux", "almalinux", "centos"):
        return version_id.split(".")[0]
    if product == "alpine-linux":
        match = re.match(r"\d+\.\d+", version_id)
        return match.group() if match else ""
    return version_id  # ubuntu "22.04", amazon-linux "2023", sles "15.5"


def _find_cycle(
    product: str, cycle_name: str, cycles: Iterable[records.EolCycle]
) -> records.EolCycle | None:
    by_source = {
        cycle.source: cycle
        for cycle in cycles
        if cycle.product == product and cycle.cycle == cycle_name
    }
    for source in SOURCE_PREFERENCE.get(product, (ENDOFLIFE,)):
        if source in by_source:
            return by_source[source]
    return None


def _support_end(product: str, cycle: records.EolCycle, evidence: Mapping[str, Any]) -> date:
    """The last day the host is covered, seen from inside regular support."""
    assert cycle.eol is not None
    extended = _extended_end(product, cycle, evidence)
    return extended if extended is not None and extended > cycle.eol else cycle.eol


def _extended_end(
    product: str, cycle: records.EolCycle, evidence: Mapping[str, Any]
) -> date | None:
    if product == "debian":
        return cycle.extended
    if product == "ubuntu" and _esm_enrolled(evidence):
        return cycle.extended
    return None


def _esm_enrolled(evidence: Mapping[str, Any]) -> bool:
    sources = _mapping(_mapping(evidence.get("updates")).get("apt_sources"))
    return sources.get("esm") is True


def _unknown(product: str | None, cycle: str | None, reason: str) -> dict:
    return {
        "product": product,
        "cycle": cycle,
        "supported": None,
        "support_ends": None,
        "basis": None,
        "source": None,
        "reason": reason,
    }


def _day(value: date) -> date:
    return value.date() if isinstance(value, datetime) else value


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""
