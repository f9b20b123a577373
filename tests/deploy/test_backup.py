"""``mamori backup`` and ``mamori restore``, run as an operator runs them: data made through the
real services (an assessment with evidence files, its certificate and PDF, the audit trail),
backed up, restored into a new database and a new files folder, where ``mamori audit verify``
passes and every file is identical; archives that were changed are refused before anything is
touched. On SQLite and on PostgreSQL (pg_dump in a snapshot, pg_restore in one transaction)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pty
import re
import select
import shutil
import sqlite3
import subprocess
import tarfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from mamori.assessments import services
from mamori.assessments.models import Outcome
from mamori.audit.models import AuditEvent
from mamori.core import backup
from tests.certificates import database_url_of_test_db
from tests.evaluation.test_cli import BIN

pytestmark = pytest.mark.django_db(transaction=True)

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d4944415478da63f8cfc0f01f0005000201a0b1b3b20000000049454e44ae426082"
)


@pytest.fixture
def source_files(settings, tmp_path) -> Path:
    root = tmp_path / "source-files"
    root.mkdir()
    settings.PRIVATE_FILES_ROOT = root
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": root, "base_url": None},
        },
    }
    return root


@pytest.fixture
def new_database(tmp_path):
    """An empty database of the suite's backend for the restore: a new SQLite file, or a new
    PostgreSQL database beside the test database (dropped afterwards)."""
    if connection.vendor == "sqlite":
        yield f"sqlite:///{tmp_path / 'restored.sqlite3'}"
        return
    import psycopg

    url = urlsplit(database_url_of_test_db())
    name = f"{url.path.lstrip('/')}_restored"
    server = urlunsplit(url._replace(path="/postgres"))
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(url._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def certified_with_evidence(world):
    """The bank's assessment with two evidence files, passed, its certificate PDF rendered
    (tasks run in-process in the suite), every step in the audit trail."""
    assessment = world.start()
    world.answer_all(assessment)
    for upload, qid in (
        (SimpleUploadedFile("firewall-policy.txt", b"default deny inbound\n"), "A4.2"),
        (SimpleUploadedFile("screenshot.png", PNG), None),
    ):
        services.add_attachment(world.admin, world.access(world.admin), assessment.pk, upload, qid)
    world.sign(assessment)
    services.submit(world.admin, world.access(world.admin), assessment.pk)
    assessment.refresh_from_db()
    if assessment.assessor_id != world.assessor.pk:
        services.take_over(world.assessor, world.access(world.assessor), assessment.pk)
    world.mark_all(assessment)
    services.decide(world.assessor, world.access(world.assessor), assessment.pk, Outcome.PASS, "ok")
    return assessment


def environment(tmp_path: Path, database_url: str, files: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_URL", "MAMORI_"))
    }
    env.update(
        SECRET_KEY="test-only-key-0123456789abcdefghijklmnopqrstuvwxyz",
        ALLOWED_HOSTS="localhost",
        MAMORI_VAR_DIR=str(tmp_path / "var"),
        MAMORI_FILES_DIR=str(files),
        DATABASE_URL=database_url,
    )
    return env


def mamori(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "mamori"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def on_a_terminal(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """Run ``mamori`` with its standard error on a pseudo-terminal: the exit status, standard
    output and what the terminal showed."""
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [str(BIN / "mamori"), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=terminal,
            text=True,
        )
        os.close(terminal)
        shown = b""
        while select.select([controller], [], [], 60)[0]:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
        stdout = process.stdout.read()
        return process.wait(timeout=60), stdout, shown.decode(errors="replace")
    finally:
        os.close(controller)


def tree(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def restored_rows(database_url: str, table: str, column: str) -> list:
    query = f"SELECT {column} FROM {table} ORDER BY 1"  # noqa: S608  (names from the test)
    if database_url.startswith("sqlite:///"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as database:
            return [row[0] for row in database.execute(query)]
    import psycopg

    with psycopg.connect(database_url) as database:
        return [row[0] for row in database.execute(query)]


def table_count(database_url: str) -> int:
    if database_url.startswith("sqlite:///"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as database:
            return database.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%'"
            ).fetchone()[0]
    import psycopg

    with psycopg.connect(database_url) as database:
        return database.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone()[0]


def rewritten(archive: Path, output: Path, change) -> Path:
    """A copy of ``archive`` with ``change(name, data)`` applied to each member: it returns
    the new data, or a list of (TarInfo, data) to put in its place."""
    with tarfile.open(archive) as source, tarfile.open(output, "w") as target:
        for member in source:
            data = source.extractfile(member).read()
            replaced = change(member.name, data)
            if isinstance(replaced, list):
                for info, content in replaced:
                    target.addfile(info, io.BytesIO(content) if content is not None else None)
                continue
            info = tarfile.TarInfo(member.name)
            info.size = len(replaced)
            target.addfile(info, io.BytesIO(replaced))
    return output


def test_backup_and_restore_into_a_new_database_and_files_folder(
    world, source_files, new_database, tmp_path
):
    assessment = certified_with_evidence(world)
    source = tree(source_files)
    certificate = assessment.certificate
    assert sorted(name.split("/")[0] for name in source) == ["certificates", "evidence", "evidence"]
    assert source[certificate.pdf.name].startswith(b"%PDF")
    events = AuditEvent.objects.count()
    assert events > 10

    archive = tmp_path / "mamori.tar"
    source_env = environment(tmp_path, database_url_of_test_db(), source_files)
    # On a terminal the command shows its progress; its result is one line on stdout.
    returncode, stdout, shown = on_a_terminal(source_env, "backup", str(archive))
    assert returncode == 0, shown
    assert "database" in shown
    assert "files" in shown
    assert stdout.startswith(f"backup written to {archive}: database ")
    assert len(stdout.strip().splitlines()) == 1

    with tarfile.open(archive) as opened:
        manifest = json.loads(opened.extractfile("manifest.json").read())
        names = opened.getnames()
    assert manifest["format"] == "mamori.backup/1"
    assert manifest["database"]["vendor"] == connection.vendor
    assert manifest["missing_files"] == []
    assert {item["path"]: item["sha256"] for item in manifest["files"]} == {
        name: hashlib.sha256(data).hexdigest() for name, data in source.items()
    }
    assert names[-1] == "manifest.json"

    restored_files = tmp_path / "restored-files"
    target_env = environment(tmp_path, new_database, restored_files)

    # A changed byte in one evidence file: refused before the database or the folder is touched.
    evidence = "files/" + next(
        name for name, data in source.items() if data == b"default deny inbound\n"
    )
    tampered = rewritten(
        archive,
        tmp_path / "tampered.tar",
        lambda name, data: data.replace(b"deny", b"allow") if name == evidence else data,
    )
    refused = mamori(target_env, "restore", str(tampered))
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"CommandError: {evidence} does not match the manifest's digest: the archive was "
        "changed or damaged; refused"
    )
    assert table_count(new_database) == 0
    assert not restored_files.exists()
    assert not list(tmp_path.glob(".restored-files.restoring-*"))

    restored = mamori(target_env, "restore", str(archive))
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout.startswith("restored the backup of ")
    assert tree(restored_files) == source

    verified = mamori(target_env, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.strip() == f"audit trail intact: {events} entries verified"
    listed = mamori(target_env, "certificates", "list", "--format", "json")
    assert [item["number"] for item in json.loads(listed.stdout)] == [assessment.certificate.number]

    # Now neither is empty: a second restore is refused in one line, unless --force.
    again = mamori(target_env, "restore", str(archive))
    assert again.returncode == 1
    assert "is not empty" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    (restored_files / "stray.txt").write_text("not in the backup")
    forced = mamori(target_env, "restore", "--force", str(archive))
    assert forced.returncode == 0, forced.stderr
    assert tree(restored_files) == source
    assert restored_rows(new_database, "certificates_certificate", "number") == [certificate.number]


def test_missing_files_are_reported_and_altered_archives_refused(world, source_files, tmp_path):
    # A file the database names but the folder lacks is named in the manifest and reported.
    assessment = world.start()
    lost = services.add_attachment(
        world.admin,
        world.access(world.admin),
        assessment.pk,
        SimpleUploadedFile("lost.txt", b"gone\n"),
        None,
    )
    (source_files / lost.file.name).unlink()
    (source_files / "evidence" / "note.txt").write_bytes(b"kept\n")
    archive = tmp_path / "mamori.tar"
    assert backup.backup(archive).missing == [lost.file.name]
    with tarfile.open(archive) as opened:
        manifest = json.loads(opened.extractfile("manifest.json").read())
    assert manifest["missing_files"] == [lost.file.name]
    assert [item["path"] for item in manifest["files"]] == ["evidence/note.txt"]

    # Members changed in ways a digest alone would not catch are refused too.

    def escaping(name: str, data: bytes):
        if name != "manifest.json":
            return data
        manifest = json.loads(data)
        manifest["files"].append(
            {"path": "../escape.txt", "size": 3, "sha256": hashlib.sha256(b"bad").hexdigest()}
        )
        info = tarfile.TarInfo("files/../escape.txt")
        info.size = 3
        meta = json.dumps(manifest).encode()
        manifest_info = tarfile.TarInfo("manifest.json")
        manifest_info.size = len(meta)
        return [(info, b"bad"), (manifest_info, meta)]

    def linked(name: str, data: bytes):
        if not name.endswith("note.txt"):
            return data
        info = tarfile.TarInfo(name)
        info.type = tarfile.SYMTYPE
        info.linkname = "/etc/passwd"
        return [(info, None)]

    def extra(name: str, data: bytes):
        if name != "manifest.json":
            return data
        info = tarfile.TarInfo("files/evidence/extra.txt")
        info.size = 1
        manifest_info = tarfile.TarInfo(name)
        manifest_info.size = len(data)
        return [(info, b"x"), (manifest_info, data)]

    def dropped(name: str, data: bytes):
        return [] if name.endswith("note.txt") else data

    staging = tmp_path / "staging"
    for change, reason in (
        (escaping, "the archive has an unsafe member 'files/../escape.txt': refused"),
        (linked, "the archive has an unexpected member 'files/evidence/note.txt': refused"),
        (extra, "the archive has an unexpected member 'files/evidence/extra.txt': refused"),
        (dropped, "the archive lacks files/evidence/note.txt: refused"),
    ):
        bad = rewritten(archive, tmp_path / f"{change.__name__}.tar", change)
        staging.mkdir()
        with (
            backup.open_archive(bad) as (opened, manifest),
            pytest.raises(backup.BackupError) as refused,
        ):
            backup.extract_verified(opened, manifest, staging)
        assert str(refused.value) == reason
        shutil.rmtree(staging)
    assert not (tmp_path / "escape.txt").exists()

    not_ours = tmp_path / "other.tar"
    with tarfile.open(not_ours, "w") as other:
        other.addfile(tarfile.TarInfo("readme.txt"), io.BytesIO(b""))
    for path, reason in (
        (not_ours, "is not a Mamori backup (no readable manifest"),
        (tmp_path / "absent.tar", "absent.tar does not exist"),
        (source_files / "evidence" / "note.txt", "is not a Mamori backup"),
    ):
        with pytest.raises(backup.BackupError, match=re.escape(reason)), backup.open_archive(path):
            pass
