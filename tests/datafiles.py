"""The real data the tests read: vendored in tests/data (its README.md names each file's source,
snapshot and licence, and the subset taken). Every test finds its files here, so the suite runs
in a fresh clone with nothing outside it.

The counts below are read from the raw files (file names, JSON keys, CSV lines), never through
the parsers or importer under test, so a test that says "every record was read" compares the code
with an independent count.
"""

from __future__ import annotations

import json
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"

OSV = DATA / "osv"
PYPI = OSV / "pypi"
DEBIAN12 = OSV / "debian12"
UBUNTU = OSV / "ubuntu"
KEV_FILE = DATA / "kev" / "known_exploited_vulnerabilities.json"
EOL_PRODUCTS = DATA / "eol" / "products"
DISTRO_INFO = DATA / "eol" / "distro-info"
HOSTS = DATA / "hosts"
DEBIAN12_STATUS = HOSTS / "debian12-dpkg-status"
DEBIAN12_OS_RELEASE = HOSTS / "debian12-os-release"
DEBIAN12_VERSION = HOSTS / "debian12-debian_version"
DEBIAN12_PACKAGES = HOSTS / "this-debian12-packages.tsv"
VERSION_CASES = DATA / "versions" / "dpkg-compare-cases.tsv"
# Early warning: hand-written feed files in the real layouts (fictitious rows, README.md).
EARLYWARNING = DATA / "earlywarning"
SHADOWSERVER = EARLYWARNING / "shadowserver"
SHADOWSERVER_DAILY = SHADOWSERVER / "daily"
EARLYWARNING_HOSTILE = EARLYWARNING / "hostile"
EPSS_FILE = EARLYWARNING / "epss" / "epss_scores-2026-11-20.csv"
EPSS_GZ = EARLYWARNING / "epss" / "epss_scores-2026-11-20.csv.gz"
EPSS_MALFORMED = EARLYWARNING / "epss" / "epss-malformed.csv"


def _records(folder: Path) -> list[dict]:
    return [json.loads(path.read_text("utf-8")) for path in sorted(folder.rglob("*.json"))]


_pypi = _records(PYPI)
_debian12 = _records(DEBIAN12)
_kev = json.loads(KEV_FILE.read_text("utf-8"))["vulnerabilities"]

PYPI_RECORDS = len(_pypi)
PYPI_WITHDRAWN = sum(1 for record in _pypi if "withdrawn" in record)
# Records with a CVSS v3 vector in their top-level "severity".
PYPI_CVSS_V3 = sum(
    1 for record in _pypi if any(s["type"] == "CVSS_V3" for s in record.get("severity", ()))
)
DEBIAN12_RECORDS = len(_debian12)
DEBIAN12_CVES = len({alias for record in _debian12 for alias in record["aliases"]})
UBUNTU_RECORDS = sum(1 for _ in UBUNTU.glob("*.json"))
KEV_ENTRIES = len(_kev)
KEV_RANSOMWARE = sum(1 for entry in _kev if entry["knownRansomwareCampaignUse"] == "Known")
EOL_PRODUCT_FILES = sum(1 for _ in EOL_PRODUCTS.glob("*.json"))
EOL_CYCLES = sum(len(json.loads(path.read_text("utf-8"))) for path in EOL_PRODUCTS.glob("*.json"))
# distro-info rows: every line after the header.
DISTRO_INFO_ROWS = {
    product: len((DISTRO_INFO / f"{product}.csv").read_text("utf-8").splitlines()) - 1
    for product in ("debian", "ubuntu")
}

# Rows per vendored Shadowserver report, by report type (the file name): every line after the
# header (these files hold one row per line). EPSS: every line after the comment and the header.
SHADOWSERVER_ROWS = {
    path.stem: len(path.read_text("utf-8").splitlines()) - 1 for path in SHADOWSERVER.glob("*.csv")
}
EPSS_ROWS = len(EPSS_FILE.read_text("utf-8").splitlines()) - 2

del _pypi, _debian12, _kev


def padded_copy(path: Path, target: Path, size: int) -> Path:
    """``path`` written to ``target`` with trailing whitespace up to ``size`` bytes: the same
    JSON document, as big as a test needs (the vendored KEV subset is far below the real
    catalogue's 1.2 MiB)."""
    content = path.read_bytes()
    assert len(content) <= size, f"{path} is already over {size} bytes"
    target.write_bytes(content + b"\n" * (size - len(content)))
    return target
