"""The command line: exit status and one-line messages, ``stats``, and the installed
``mamori`` script run as an operator runs it (a real process, a pipe and a terminal)."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import translation

from mamori.advisories.models import Advisory, ImportRun, KevEntry
from tests.advisories.conftest import run_import, write_json
from tests.datafiles import (
    DISTRO_INFO,
    KEV_ENTRIES,
    KEV_FILE,
    UBUNTU,
    UBUNTU_RECORDS,
    padded_copy,
)

pytestmark = pytest.mark.django_db

MAMORI = Path(sys.executable).parent / "mamori"


# --- usage errors: exit 2, one line naming the file, nothing imported -------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda tmp: tmp / "missing.json", "no such file or directory"),
        (lambda tmp: _file(tmp / "notes.txt", b"just some notes\n"), "unrecognised format"),
        (lambda tmp: _file(tmp / "x.json", b'{"hello": "world"}'), "unrecognised format"),
        (lambda tmp: _directory(tmp / "empty"), "no .json or .csv files in this directory"),
    ],
)
def test_usage_errors_name_the_file_and_import_nothing(tmp_path, make, message):
    path = make(tmp_path)
    # A good path before the bad one: still nothing is imported.
    result = run_import(KEV_FILE, path)
    assert result.code == 2
    assert result.message.startswith(f"{path}: {message}")
    assert "\n" not in result.message
    assert not KevEntry.objects.exists()
    assert not ImportRun.objects.exists()


def _file(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


def _directory(path: Path) -> Path:
    path.mkdir()
    return path


@pytest.mark.parametrize(
    "arguments",
    [
        (UBUNTU, "--product", "python"),
        (KEV_FILE, KEV_FILE, "--product", "python"),
        (KEV_FILE, "--product", "Not A Slug"),
        (KEV_FILE, "--batch-size", "0"),
    ],
)
def test_option_misuse_is_a_usage_error(arguments):
    result = run_import(*arguments)
    assert result.code == 2
    assert "\n" not in result.message
    assert not ImportRun.objects.exists()


def test_a_single_document_over_the_size_cap(tmp_path, monkeypatch):
    from mamori.advisories import sources

    monkeypatch.setattr(sources, "MAX_DOCUMENT_BYTES", 1024 * 1024)
    # The KEV catalogue padded to 1.5 MiB (the real one is 1.2 MiB): still one JSON document.
    catalogue = padded_copy(KEV_FILE, tmp_path / "kev.json", 3 * 512 * 1024)
    result = run_import(catalogue)
    assert result.code == 2
    assert result.message == (
        f"{catalogue}: a single JSON document of 1 MiB is over the 1 MiB limit; "
        "import a zip, a directory or a JSON list instead"
    )
    assert not KevEntry.objects.exists()
    # Under the cap, the same document imports.
    monkeypatch.setattr(sources, "MAX_DOCUMENT_BYTES", 2 * 1024 * 1024)
    assert run_import(catalogue).code == 0
    assert KevEntry.objects.count() == KEV_ENTRIES


# --- bad records: exit 1 after importing the good ones ----------------------------------------


def test_bad_records_exit_1_after_the_summary(tmp_path):
    catalogue = json.loads(KEV_FILE.read_text())
    catalogue["vulnerabilities"][3]["dateAdded"] = "someday"
    result = run_import(write_json(tmp_path / "kev.json", catalogue))
    assert result.code == 1
    cve = catalogue["vulnerabilities"][3]["cveID"]
    assert result.bad_lines == [f"{cve}: bad dateAdded date 'someday' ({tmp_path / 'kev.json'})"]
    assert result.stdout.count("\n") == 1
    assert (
        f"KEV {KEV_ENTRIES - 1} added, 0 changed, 0 unchanged, 0 withdrawn, 1 bad" in result.stdout
    )
    assert KevEntry.objects.count() == KEV_ENTRIES - 1
    run = ImportRun.objects.get()
    assert run.state == ImportRun.State.BAD_RECORDS
    assert run.bad_records == [
        {"where": str(tmp_path / "kev.json"), "id": cve, "reason": "bad dateAdded date 'someday'"}
    ]
    assert run.requested_by  # who ran it
    assert run.finished_at is not None


# --- stats ------------------------------------------------------------------------------------


def test_stats_in_text_and_json():
    assert run_import(UBUNTU, KEV_FILE, DISTRO_INFO).code == 0
    out = io.StringIO()
    with translation.override("en"):
        call_command("advisories", "stats", "--format", "json", stdout=out)
    data = json.loads(out.getvalue())
    assert data["advisories"] == UBUNTU_RECORDS
    assert data["ecosystems"] == {"Ubuntu": {"advisories": 7, "packages": 7}}
    assert data["kev"] == KEV_ENTRIES
    assert data["eol"] == {"debian (distro-info)": 22, "ubuntu (distro-info)": 45}
    assert data["last_import"]["added"] == 7 + KEV_ENTRIES + 67
    assert data["last_import"]["skipped"] == 0
    text = io.StringIO()
    with translation.override("en"):
        call_command("advisories", "stats", stdout=text)
    lines = text.getvalue().splitlines()
    assert lines[0] == "7 advisories (0 withdrawn), 14 affected packages"
    assert "  Ubuntu: 7 advisories, 7 packages" in lines
    assert f"KEV: {KEV_ENTRIES} entries" in lines
    assert "EOL: 2 products" in lines


# --- the installed script ---------------------------------------------------------------------


def _database_url() -> str:
    """The test database this process uses, as a URL for a child process."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{Path(settings['NAME']).resolve()}"
    password = f":{settings['PASSWORD']}" if settings.get("PASSWORD") else ""
    host = settings.get("HOST") or "127.0.0.1"
    port = settings.get("PORT") or "5432"
    return f"postgres://{settings['USER']}{password}@{host}:{port}/{settings['NAME']}"


def _environment() -> dict[str, str]:
    # Warnings only: the server's re-match receiver logs at INFO, which is not ours to check.
    return {**os.environ, "DATABASE_URL": _database_url(), "MAMORI_LOG_LEVEL": "WARNING"}


def _mamori(*arguments: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(MAMORI), "advisories", "import", *map(str, arguments)],
        capture_output=True,
        text=True,
        env=_environment(),
        timeout=120,
        check=False,
    )


@pytest.mark.django_db(transaction=True)
def test_the_installed_command_on_real_files(tmp_path):
    done = _mamori(UBUNTU)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # not a terminal: no progress bar
    assert len(done.stdout.splitlines()) == 1
    assert Advisory.objects.count() == UBUNTU_RECORDS
    # The summary is translated (Japanese by default); the counts are in the run's record.
    run = ImportRun.objects.get()
    assert run.counts["osv"]["added"] == UBUNTU_RECORDS
    assert str(run.pk) in done.stdout

    missing = _mamori(tmp_path / "missing.json")
    assert missing.returncode == 2
    assert missing.stdout == ""
    (line,) = missing.stderr.strip().splitlines()
    assert str(tmp_path / "missing.json") in line
    assert "Traceback" not in missing.stderr

    broken = tmp_path / "USN-BROKEN.json"
    broken.write_text((UBUNTU / "USN-6859-1.json").read_text()[:500])
    bad = _mamori(broken, KEV_FILE)
    assert bad.returncode == 1
    assert str(broken) in bad.stderr
    assert "Traceback" not in bad.stderr
    assert KevEntry.objects.count() == KEV_ENTRIES


@pytest.mark.django_db(transaction=True)
def test_a_terminal_gets_a_progress_bar_and_quiet_silences_it():
    def run_on_a_terminal(*extra: str) -> str:
        controller, terminal = pty.openpty()
        try:
            process = subprocess.Popen(
                [str(MAMORI), "advisories", "import", str(UBUNTU), *extra],
                stdout=subprocess.DEVNULL,
                stderr=terminal,
                env=_environment(),
            )
            os.close(terminal)
            output = b""
            while True:
                ready, _, _ = select.select([controller], [], [], 60)
                if not ready:
                    break
                try:
                    chunk = os.read(controller, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            assert process.wait(timeout=60) == 0
        finally:
            os.close(controller)
        return output.decode(errors="replace")

    shown = run_on_a_terminal()
    assert "7/7" in shown
    assert "records" in shown
    assert run_on_a_terminal("--quiet") == ""
