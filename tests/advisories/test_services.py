"""The index built from the database, its per-process cache, and ``assess_evidence`` on the real
Debian 12 host."""

from __future__ import annotations

from datetime import date

import pytest

from mamori.advisories import osv, services
from mamori.advisories.models import IndexGeneration
from tests.advisories.conftest import real_record, run_import, variant, write_json
from tests.datafiles import (
    DEBIAN12,
    DISTRO_INFO,
    EOL_PRODUCTS,
    KEV_ENTRIES,
    KEV_FILE,
    KEV_RANSOMWARE,
    OSV,
    PYPI,
    UBUNTU,
)
from tests.verification.factory import debian12_evidence, with_source_version

pytestmark = pytest.mark.django_db

AS_OF = date(2026, 11, 25)  # the day the Debian host snapshot was taken


def test_stored_advisories_are_the_parsed_records():
    """What the index is built from equals what the parser made of every real file: nothing is
    lost or changed on the way through the database."""
    assert run_import(OSV).code == 0
    stored = {advisory.id: advisory for advisory in services.iter_stored_advisories()}
    paths = sorted(OSV.rglob("*.json"))
    assert len(stored) == len(paths)
    for path in paths:
        assert stored[path.stem] == osv.parse_osv(real_record(path)), path


def test_kev_and_cycles_round_trip():
    assert run_import(KEV_FILE, DISTRO_INFO).code == 0
    kev = list(services.iter_stored_kev())
    assert len(kev) == KEV_ENTRIES
    assert sum(entry.known_ransomware for entry in kev) == KEV_RANSOMWARE
    cycles = services.load_cycles()
    bookworm = next(c for c in cycles if (c.product, c.cycle) == ("debian", "12"))
    assert (bookworm.eol, bookworm.extended) == (date(2026, 7, 11), date(2028, 6, 30))


def test_the_index_is_cached_until_an_import_changes_something(tmp_path):
    assert run_import(UBUNTU).code == 0
    index = services.load_index()
    assert len(index) == 7
    assert services.load_index() is index

    # Re-importing the same data moves nothing: the same index is kept.
    assert run_import(UBUNTU).code == 0
    assert services.load_index() is index

    # A changed record moves the generation: the next call rebuilds.
    record = variant(DEBIAN12 / "MAMORI-DEB12-CVE-2022-48303-tar.json")
    assert run_import(write_json(tmp_path / "tar.json", record)).code == 0
    rebuilt = services.load_index()
    assert rebuilt is not index
    assert len(rebuilt) == 8
    # Lifecycle data moves it too (the cycles are cached with the index).
    assert run_import(DISTRO_INFO / "debian.csv").code == 0
    assert services.load_index() is not rebuilt
    assert len(services.load_cycles()) == 22


def test_a_generation_rolled_back_and_bumped_again_is_not_mistaken():
    IndexGeneration.bump()
    value, token = IndexGeneration.current()
    index = services.load_index()
    # As after a rolled-back import (a test, a restored backup): the counter goes back, and the
    # next import bumps it to the value the cached index was built at, with other data.
    IndexGeneration.objects.filter(pk=IndexGeneration.SINGLETON).update(value=value - 1)
    IndexGeneration.bump()
    assert IndexGeneration.current()[0] == value
    assert IndexGeneration.current()[1] != token
    assert services.load_index() is not index


def test_assess_evidence_says_when_the_store_cannot_judge_vulnerabilities():
    # Nothing imported: not assessed, rather than "nothing missing".
    empty = services.assess_evidence(debian12_evidence(), as_of=AS_OF)
    assert empty["vulnerabilities"] is None
    assert empty["vulnerabilities_complete"] is False
    # Advisories for another ecosystem only: matched, but not complete for a Debian host.
    assert run_import(PYPI / "django").code == 0
    other = services.assess_evidence(debian12_evidence(), as_of=AS_OF)
    assert other["vulnerabilities"] == []
    assert other["vulnerabilities_complete"] is False


@pytest.fixture
def advisory_store():
    result = run_import(DEBIAN12, KEV_FILE, DISTRO_INFO, EOL_PRODUCTS)
    assert result.code == 0, result.stderr


def test_assess_evidence_on_the_real_debian_host(advisory_store):
    # The snapshot host has every bookworm fix from its own changelogs installed.
    assessed = services.assess_evidence(debian12_evidence(), as_of=AS_OF)
    assert set(assessed) == {
        "vulnerabilities",
        "vulnerabilities_complete",
        "os_support",
        "software_support",
    }
    assert assessed["vulnerabilities"] == []
    assert assessed["vulnerabilities_complete"] is True
    support = assessed["os_support"]
    # Debian 12's regular security support ended on 2026-07-11; LTS runs to 2028-06-30.
    assert support["supported"] is True
    assert support["support_ends"] == "2028-06-30"
    assert support["basis"] == "lts"
    assert assessed["software_support"] == []


def test_assess_evidence_finds_a_missing_fix_and_flags_kev(advisory_store):
    evidence = with_source_version(debian12_evidence(), "git", "1:2.39.5-0+deb12u1")
    evidence = with_source_version(evidence, "tar", "1.34+dfsg-1.2")
    vulnerabilities = services.assess_evidence(evidence, as_of=AS_OF)["vulnerabilities"]
    by_advisory = {item["advisory"]: item for item in vulnerabilities}
    tar = by_advisory["MAMORI-DEB12-CVE-2022-48303-tar"]
    assert tar["package"] == "tar"
    assert tar["installed_version"] == "1.34+dfsg-1.2"
    assert tar["fixed_version"] == "1.34+dfsg-1.2+deb12u1"
    assert tar["aliases"] == ["CVE-2022-48303"]
    assert tar["kev"] is False
    git = by_advisory["MAMORI-DEB12-CVE-2025-48384-git"]
    assert git["kev"] is True  # CVE-2025-48384 is in the CISA catalogue
    assert all(item["package"] in {"git", "tar"} for item in vulnerabilities)


def test_an_old_ubuntu_or_eol_release_is_not_supported(advisory_store):
    evidence = debian12_evidence()
    evidence["os"]["version_id"] = "10"
    evidence["os"]["version_codename"] = "buster"
    support = services.assess_evidence(evidence, as_of=AS_OF)["os_support"]
    assert support["supported"] is False
    assert support["support_ends"] == "2024-06-30"  # buster LTS end
