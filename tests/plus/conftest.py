"""Helpers for the Plus audit tests: a passed Cyber Essentials certificate, agent evidence from a
real collection, advisories imported with the real importer, and the services' common moves."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone, translation

from mamori.certificates.models import Certificate
from mamori.plus import services
from mamori.plus.models import PlusAudit
from tests.agent import roots
from tests.datafiles import DEBIAN12, DISTRO_INFO, KEV_FILE
from tests.verification.conftest import import_advisories, store
from tests.verification.factory import REPO, debian12_evidence

__all__ = ["debian12_evidence", "store"]


@pytest.fixture(autouse=True)
def _english():
    """Services called outside a request speak the default language (Japanese); the tests read
    their messages in English."""
    with translation.override("en"):
        yield


@pytest.fixture
def certificate(world) -> Certificate:
    """The bank's Cyber Essentials certificate, issued today after ada passed its assessment."""
    assessment = world.passed()
    return Certificate.objects.get(assessment=assessment)


def request(world, certificate, user=None) -> PlusAudit:
    user = user or world.admin
    return services.request_audit(user, world.access(user), certificate.pk)


@pytest.fixture
def audit(world, certificate) -> PlusAudit:
    return request(world, certificate)


@pytest.fixture
def advisories(tmp_path):
    """The real Debian 12 libwebp advisories, the real KEV catalogue and Debian's release dates
    (for the OS support check), imported with the real importer."""
    folder = tmp_path / "osv"
    folder.mkdir()
    for path in DEBIAN12.glob("*-libwebp.json"):
        shutil.copy(path, folder / path.name)
    import_advisories(
        folder,
        KEV_FILE,
        DISTRO_INFO / "debian.csv",
    )
    return folder


def confirm_all(world, audit, kinds: dict[str, str] | None = None, default="end_user") -> None:
    """ada confirms the kind of every device in the frame (``kinds`` by device name)."""
    rows = services.frame(audit)
    services.confirm_kinds(
        world.assessor,
        world.access(world.assessor),
        audit.pk,
        {row.field: (kinds or {}).get(row.name, default) for row in rows},
    )


def as_assessor(world, function, audit, *args):
    return function(world.assessor, world.access(world.assessor), audit.pk, *args)


def pass_assessor_cases(world, audit, codes=("TC1", "TC4", "TC5", "TC6")) -> None:
    for code in codes:
        services.record_test_case(
            world.assessor,
            world.access(world.assessor),
            audit.pk,
            code,
            "pass",
            f"{code} done as the scheme describes.",
        )


def page_client(user, *, english: bool = True) -> Client:
    from tests.conftest import client_for

    client = client_for(user)
    if english:
        client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def upload(name: str, content: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content)


# --- Evidence from the real agent, collected from a root filesystem ----------------------------


def fresh_clamav(root: Path) -> None:
    """Signatures built now, so the malware check does not depend on the day the tests run."""
    stamp = timezone.now().astimezone(dt.UTC).strftime("%d %b %Y %H-%M +0000")
    header = f"ClamAV-VDB:{stamp}:27832:2071950:90:X:X:raynman"
    (root / "var/lib/clamav/daily.cld").write_bytes(roots.cvd(header))


@pytest.fixture
def debian_root(tmp_path) -> Path:
    root = roots.build_debian(tmp_path / "debian")
    fresh_clamav(root)
    return root


def collect(root: Path) -> dict:
    """``python -m mamori_agent collect --root ROOT``, as an operator runs it on a mounted
    image: the evidence document it prints."""
    completed = subprocess.run(
        [sys.executable, "-m", "mamori_agent", "collect", "--root", str(root)],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"},
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return json.loads(completed.stdout)


def fix_account_separation(root: Path) -> None:
    """What the bank's administrators do after TC7 failed, on every host: remove the second
    UID 0 account and the sudo rule that grants every command without a password."""
    for name in ("etc/passwd", "etc/shadow"):
        path = root / name
        lines = path.read_text().splitlines(keepends=True)
        path.write_text("".join(line for line in lines if not line.startswith("toor:")))
    # "Defaults:deploy !authenticate" lets deploy run every sudo command without a password;
    # OPS's NOPASSWD rule names an alias for ALL.
    for name, marker in (("etc/sudoers", "!authenticate"), ("etc/sudoers.d/90-deploy", "OPS")):
        path = root / name
        lines = path.read_text().splitlines(keepends=True)
        path.write_text("".join(line for line in lines if marker not in line))
