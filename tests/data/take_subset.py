"""Rebuilds the vendored test data (this folder) from a full copy of Mamori's real-data snapshot.

    python tests/data/take_subset.py /path/to/full/data

The full copy has the layout this folder keeps (``osv/``, ``kev/``, ``eol/``, ``hosts/``,
``versions/``); README.md says where each part comes from. The rules below are what the tests
need, and README.md repeats them: whole files are copied byte for byte; only the KEV catalogue is
rewritten, as a subset in upstream's own serialisation (so every kept entry is byte-identical).
Licence files (LICENSE.upstream, COPYRIGHT.*) are kept in the repository, not copied here.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Debian 12 records (Mamori-derived, one per CVE and source package): every record of the source
# packages the tests and the demo name; of the kernel's 2,073, one per distinct fixed version.
DEBIAN12_SOURCES = {
    # matching, verification, evaluation and the demo
    "curl", "freetype", "git", "glibc", "libwebp", "nghttp2", "openssh", "openssl",
    "postgresql-15", "systemd", "tar",
    # the side-by-side comparison with debsecan: a binary with its own epoch (util-linux's
    # bsdutils), held, removed and selected-for-removal packages, sources without an epoch
    "avahi", "expat", "libarchive", "libde265", "util-linux",
}  # fmt: skip
KERNEL = "linux"

# PyPA records: whole packages the tests install (django, salt) or name (redis), two packages
# whose records carry CVSS v3 vectors (aiohttp, urllib3), and every withdrawn record.
PYPI_PACKAGES = ("aiohttp", "django", "redis", "salt", "urllib3")
# The two records of the snapshot whose fixed versions PEP 440 cannot read: the importer leaves
# those ranges out and must say so (tests/advisories).
PYPI_RECORDS = ("binderhub/PYSEC-2021-371.json", "steam/PYSEC-2019-125.json")

# KEV: the entries for every CVE the kept OSV records name, the ones tests name on their own,
# and every 20th entry of the catalogue (from the first) as a sample of the rest.
KEV_NAMED = {"CVE-2024-1086"}  # the kernel's, matched through an UBUNTU-CVE id
KEV_SAMPLE_EVERY = 20
KEV_FILE = "known_exploited_vulnerabilities.json"

WHOLE_FILES = (
    "versions/dpkg-compare-cases.tsv",
    "hosts/debian12-dpkg-status",
    "hosts/debian12-os-release",
    "hosts/debian12-debian_version",
    "hosts/this-debian12-packages.tsv",
    "eol/distro-info/debian.csv",
    "eol/distro-info/ubuntu.csv",
)
_CVE = re.compile(r"CVE-\d{4}-\d{4,}")


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def _fixed(record: dict) -> str:
    (affected,) = record["affected"]
    return next(e["fixed"] for r in affected["ranges"] for e in r["events"] if "fixed" in e)


def debian12_paths(folder: Path) -> list[Path]:
    kept, kernel_fixes = [], set()
    for path in sorted(folder.glob("*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        (affected,) = record["affected"]
        name = affected["package"]["name"]
        if name in DEBIAN12_SOURCES:
            kept.append(path)
        elif name == KERNEL and _fixed(record) not in kernel_fixes:
            kernel_fixes.add(_fixed(record))
            kept.append(path)
    return kept


def pypi_paths(folder: Path) -> list[Path]:
    return [
        path
        for path in sorted(folder.rglob("*.json"))
        if path.parent.name in PYPI_PACKAGES
        or path.relative_to(folder).as_posix() in PYPI_RECORDS
        or "withdrawn" in json.loads(path.read_text(encoding="utf-8"))
    ]


def kev_subset(catalogue: dict, named: set[str]) -> dict:
    entries = [
        entry
        for position, entry in enumerate(catalogue["vulnerabilities"])
        if entry["cveID"] in named or position % KEV_SAMPLE_EVERY == 0
    ]
    return {**catalogue, "count": len(entries), "vulnerabilities": entries}


def kev_text(catalogue: dict) -> str:
    """The catalogue as CISA writes it: 4-space indent, ASCII escapes and "\\/" for "/" (a
    "/" only ever occurs inside strings, so the replacement is exact)."""
    return json.dumps(catalogue, indent=4).replace("/", "\\/")


def rebuild(full: Path) -> dict[str, int]:
    for folder in ("osv/debian12", "osv/pypi", "osv/ubuntu", "eol/products"):
        for path in (HERE / folder).rglob("*.json"):
            path.unlink()
    for relative in WHOLE_FILES:
        _copy(full / relative, HERE / relative)
    for path in sorted((full / "eol" / "products").glob("*.json")):
        _copy(path, HERE / "eol" / "products" / path.name)
    osv_paths = [
        *debian12_paths(full / "osv" / "debian12"),
        *pypi_paths(full / "osv" / "pypi"),
        *sorted((full / "osv" / "ubuntu").glob("*.json")),
    ]
    named = set(KEV_NAMED)
    for path in osv_paths:
        _copy(path, HERE / path.relative_to(full))
        named.update(_CVE.findall(path.read_text(encoding="utf-8")))

    source_kev = full / "kev" / KEV_FILE
    catalogue = json.loads(source_kev.read_text(encoding="utf-8"))
    if kev_text(catalogue) != source_kev.read_text(encoding="utf-8"):
        sys.exit(f"{source_kev}: not in the serialisation this script reproduces")
    subset = kev_subset(catalogue, named)
    (HERE / "kev").mkdir(exist_ok=True)
    (HERE / "kev" / KEV_FILE).write_text(kev_text(subset), encoding="utf-8")
    return {
        "osv/debian12": sum(1 for _ in (HERE / "osv" / "debian12").glob("*.json")),
        "osv/pypi": sum(1 for _ in (HERE / "osv" / "pypi").rglob("*.json")),
        "osv/ubuntu": sum(1 for _ in (HERE / "osv" / "ubuntu").glob("*.json")),
        "kev": subset["count"],
        "eol/products": sum(1 for _ in (HERE / "eol" / "products").glob("*.json")),
    }


def main(arguments: list[str]) -> None:
    if len(arguments) != 1 or not (Path(arguments[0]) / "osv" / "debian12").is_dir():
        sys.exit("usage: python tests/data/take_subset.py FULL_DATA_FOLDER (with osv/debian12)")
    for folder, count in rebuild(Path(arguments[0])).items():
        print(f"{folder}: {count}")


if __name__ == "__main__":
    main(sys.argv[1:])
