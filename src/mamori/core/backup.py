"""Backups of an installation: the database and the private files in one archive.

``mamori backup FILE`` writes an uncompressed tar (``mamori.backup/1``):

- ``database.dump`` (PostgreSQL: ``pg_dump --format=custom``, already compressed) or
  ``database.sqlite3`` (SQLite: a copy made with SQLite's online backup API);
- ``files/<path>`` for every file under ``MAMORI_FILES_DIR`` (evidence, certificates, reports);
- ``manifest.json`` last: the format, when and from what it was made, and the size and SHA-256
  of every other member.

Consistency: the database is copied first, as one snapshot (PostgreSQL: ``pg_dump`` runs in a
snapshot exported from a repeatable-read transaction; SQLite: the backup API copies one
consistent state). The files are copied after it. Mamori writes a file before the row that
refers to it is committed, so every file the snapshot refers to already exists when the files
are copied; files added meanwhile are included and harmless. The file names the snapshot refers
to are read in that same snapshot, and any that cannot be found (deleted meanwhile, or already
missing) are named in the manifest and reported.

``mamori restore FILE`` first reads the whole archive and checks every member against the
manifest (a changed, missing, extra or unsafe member refuses the archive, before anything is
touched), into a staging folder beside the files folder; then restores the database
(``pg_restore`` in a single transaction, or the backup API) and puts the files in place. The
target database and files folder must be empty unless ``force`` is given.

Digests detect damage and any change to a member; they cannot detect an archive rewritten
together with its manifest: keep archives where they cannot be altered.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from django.apps import apps
from django.conf import settings
from django.db import connection, models, transaction

import mamori

FORMAT = "mamori.backup/1"
MANIFEST = "manifest.json"
FILES_PREFIX = "files/"
DUMP_MEMBERS = {"postgresql": "database.dump", "sqlite": "database.sqlite3"}
CHUNK = 1024 * 1024
# A file is copied through memory up to this size, through a temporary file beyond it.
SPOOL_BYTES = 16 * 1024 * 1024


class BackupError(Exception):
    """A backup or restore that cannot go on; the message is one line for the operator."""


@dataclass
class Progress:
    """What the commands show on a terminal: a step, and a count of bytes within it."""

    step: Callable[[str], None] = lambda _text: None
    bytes_total: Callable[[int], None] = lambda _total: None
    bytes_done: Callable[[int], None] = lambda _count: None


@dataclass
class BackupResult:
    path: Path
    database_bytes: int
    files: int
    files_bytes: int
    missing: list[str] = field(default_factory=list)


@dataclass
class RestoreResult:
    database: str
    files_dir: Path
    files: int
    created_at: str
    pending_migrations: int


# --- backup -------------------------------------------------------------------------------------


def backup(target: Path, progress: Progress | None = None) -> BackupResult:
    progress = progress or Progress()
    vendor = _vendor()
    target = target.resolve()
    if not target.parent.is_dir():
        raise BackupError(f"{target.parent} is not a folder")
    files_root = Path(settings.PRIVATE_FILES_ROOT)
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        with tempfile.TemporaryDirectory(prefix=".mamori-backup-", dir=target.parent) as work:
            dump = Path(work) / DUMP_MEMBERS[vendor]
            progress.step("database")
            referenced = _dump(vendor, dump)
            with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as archive:
                manifest_members = [_add_file(archive, dump, DUMP_MEMBERS[vendor])]
                found = sorted(_walk(files_root))
                progress.step("files")
                progress.bytes_total(sum(size for _name, size in found))
                copied = []
                for name, _size in found:
                    member = _add_private_file(archive, files_root, name, progress)
                    if member is not None:
                        copied.append(member)
                missing = sorted(referenced - {item["path"] for item in copied})
                manifest = {
                    "format": FORMAT,
                    "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "mamori": mamori.__version__,
                    "database": {"vendor": vendor, **manifest_members[0]},
                    "migrations": _applied_migrations(),
                    "files": copied,
                    "missing_files": missing,
                }
                _add_bytes(archive, MANIFEST, json.dumps(manifest, indent=1).encode())
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return BackupResult(
        path=target,
        database_bytes=manifest["database"]["size"],
        files=len(copied),
        files_bytes=sum(item["size"] for item in copied),
        missing=missing,
    )


def _vendor() -> str:
    vendor = connection.vendor
    if vendor not in DUMP_MEMBERS:
        raise BackupError(f"backups support PostgreSQL and SQLite, not {vendor}")
    return vendor


def _dump(vendor: str, output: Path) -> set[str]:
    """Copy the database to ``output`` as one snapshot; return the private file names that
    snapshot refers to."""
    if vendor == "sqlite":
        connection.ensure_connection()
        source = connection.connection
        with sqlite3.connect(output) as copy:
            source.backup(copy)
        copy.close()
        with sqlite3.connect(output) as copy:
            return _referenced_files(lambda sql: copy.execute(sql).fetchall())
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor.execute("SELECT pg_export_snapshot()")
        snapshot = cursor.fetchone()[0]
        arguments, env = _libpq_command("pg_dump", connection.settings_dict)
        _run([*arguments, "--format=custom", f"--snapshot={snapshot}", "--file", str(output)], env)

        def query(sql: str) -> list:
            cursor.execute(sql)
            return cursor.fetchall()

        return _referenced_files(query)


def _file_columns() -> Iterator[tuple[str, str]]:
    for model in apps.get_models():
        for model_field in model._meta.concrete_fields:
            if isinstance(model_field, models.FileField):
                yield model._meta.db_table, model_field.column


def _referenced_files(query: Callable[[str], list]) -> set[str]:
    quote = connection.ops.quote_name
    names: set[str] = set()
    for table, column in _file_columns():
        rows = query(f"SELECT {quote(column)} FROM {quote(table)} WHERE {quote(column)} <> ''")  # noqa: S608
        names.update(row[0] for row in rows)
    return names


def _walk(root: Path) -> Iterator[tuple[str, int]]:
    if not root.is_dir():
        return
    for folder, _subfolders, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            try:
                info = path.lstat()
            except FileNotFoundError:
                continue
            if path.is_symlink() or not path.is_file():
                continue
            yield path.relative_to(root).as_posix(), info.st_size


def _add_private_file(
    archive: tarfile.TarFile, root: Path, name: str, progress: Progress
) -> dict | None:
    """Copy one file through a spool (it may still be growing) and add exactly what was read.
    A file deleted since the folder was listed is left out."""
    try:
        source = (root / name).open("rb")
    except FileNotFoundError:
        return None
    with source, tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        digest = hashlib.sha256()
        size = 0
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            spool.write(chunk)
            size += len(chunk)
            progress.bytes_done(len(chunk))
        spool.seek(0)
        info = tarfile.TarInfo(FILES_PREFIX + name)
        info.size = size
        info.mtime = int(time.time())
        info.mode = 0o640
        archive.addfile(info, spool)
    return {"path": name, "size": size, "sha256": digest.hexdigest()}


def _add_file(archive: tarfile.TarFile, path: Path, member: str) -> dict:
    digest = _sha256_of(path)
    info = archive.gettarinfo(str(path), arcname=member)
    info.mode = 0o640
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    with path.open("rb") as source:
        archive.addfile(info, source)
    return {"member": member, "size": info.size, "sha256": digest}


def _add_bytes(archive: tarfile.TarFile, member: str, data: bytes) -> None:
    info = tarfile.TarInfo(member)
    info.size = len(data)
    info.mtime = int(time.time())
    info.mode = 0o640
    archive.addfile(info, io.BytesIO(data))


def _applied_migrations() -> dict[str, str]:
    from django.db.migrations.recorder import MigrationRecorder

    latest: dict[str, str] = {}
    for app, name in MigrationRecorder(connection).applied_migrations():
        if name > latest.get(app, ""):
            latest[app] = name
    return dict(sorted(latest.items()))


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# --- restore ------------------------------------------------------------------------------------


def restore(
    source: Path, *, force: bool = False, progress: Progress | None = None
) -> RestoreResult:
    progress = progress or Progress()
    vendor = _vendor()
    files_root = Path(settings.PRIVATE_FILES_ROOT).resolve()
    with open_archive(source) as (archive, manifest):
        if manifest["database"]["vendor"] != vendor:
            raise BackupError(
                f"{source} holds a {manifest['database']['vendor']} database; "
                f"DATABASE_URL names a {vendor} one"
            )
        _refuse_unless_empty(vendor, files_root, force)
        files_root.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(
            tempfile.mkdtemp(prefix=f".{files_root.name}.restoring-", dir=files_root.parent)
        )
        try:
            progress.step("checking")
            dump = extract_verified(archive, manifest, staging, progress)
            progress.step("database")
            _load_database(vendor, dump, force)
            dump.unlink()
            progress.step("files")
            _put_files_in_place(staging / "files", files_root)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    connection.close()
    return RestoreResult(
        database=str(connection.settings_dict["NAME"]),
        files_dir=files_root,
        files=len(manifest["files"]),
        created_at=manifest["created_at"],
        pending_migrations=_pending_migrations(),
    )


@contextmanager
def open_archive(source: Path) -> Iterator[tuple[tarfile.TarFile, dict]]:
    """The archive and its manifest; refused in one line when it is no Mamori backup."""
    try:
        archive = tarfile.open(source, "r:")  # noqa: SIM115  (the with below closes it)
    except FileNotFoundError:
        raise BackupError(f"{source} does not exist") from None
    except (tarfile.TarError, OSError) as exc:
        raise BackupError(f"{source} is not a Mamori backup ({exc})") from None
    with archive:
        yield archive, _read_manifest(archive, source)


def _read_manifest(archive: tarfile.TarFile, source: Path) -> dict:
    try:
        member = archive.getmember(MANIFEST)
        manifest = json.loads(archive.extractfile(member).read())
    except (KeyError, AttributeError, ValueError, tarfile.TarError) as exc:
        raise BackupError(
            f"{source} is not a Mamori backup (no readable manifest: {exc})"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{source} is not a {FORMAT} archive")
    return manifest


def _refuse_unless_empty(vendor: str, files_root: Path, force: bool) -> None:
    if force:
        return
    tables = connection.introspection.table_names()
    if tables:
        raise BackupError(
            f"the database {connection.settings_dict['NAME']} is not empty ({len(tables)} "
            "tables): restore into an empty one, or give --force to replace it"
        )
    if files_root.exists() and any(files_root.iterdir()):
        raise BackupError(
            f"the files folder {files_root} is not empty: restore into an empty one, "
            "or give --force to replace it"
        )


def _safe_file_name(member: str) -> str | None:
    """The path under the files folder of a ``files/...`` member, or None when it could
    leave that folder or is not plainly named."""
    if not member.startswith(FILES_PREFIX):
        return None
    relative = PurePosixPath(member[len(FILES_PREFIX) :])
    if relative.is_absolute() or not relative.parts or ".." in relative.parts:
        return None
    if relative.as_posix() != member[len(FILES_PREFIX) :]:
        return None
    return relative.as_posix()


def extract_verified(
    archive: tarfile.TarFile, manifest: dict, staging: Path, progress: Progress | None = None
) -> Path:
    """Extract every member into ``staging``, checking each against the manifest; return the
    database copy. Anything unexpected refuses the whole archive."""
    progress = progress or Progress()
    expected: dict[str, dict] = {manifest["database"]["member"]: manifest["database"]}
    for item in manifest["files"]:
        expected[FILES_PREFIX + item["path"]] = item
    progress.bytes_total(sum(item["size"] for item in expected.values()))
    seen: set[str] = set()
    for member in archive:
        if member.name == MANIFEST:
            continue
        entry = expected.get(member.name)
        if entry is None or not member.isreg() or member.name in seen:
            raise BackupError(f"the archive has an unexpected member {member.name!r}: refused")
        if member.name.startswith(FILES_PREFIX):
            relative = _safe_file_name(member.name)
            if relative is None:
                raise BackupError(f"the archive has an unsafe member {member.name!r}: refused")
            destination = staging / "files" / relative
        else:
            destination = staging / member.name
        destination.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        with archive.extractfile(member) as data, destination.open("wb") as out:
            while chunk := data.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
                progress.bytes_done(len(chunk))
        if size != entry["size"] or digest.hexdigest() != entry["sha256"]:
            raise BackupError(
                f"{member.name} does not match the manifest's digest: the archive was changed "
                "or damaged; refused"
            )
        seen.add(member.name)
    absent = sorted(set(expected) - seen)
    if absent:
        more = f" and {len(absent) - 1} more" if len(absent) > 1 else ""
        raise BackupError(f"the archive lacks {absent[0]}{more}: refused")
    return staging / manifest["database"]["member"]


def _load_database(vendor: str, dump: Path, force: bool) -> None:
    if vendor == "sqlite":
        connection.close()
        target = Path(connection.settings_dict["NAME"])
        target.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(dump) as copy, sqlite3.connect(target) as database:
            copy.backup(database)
        return
    if force:
        with connection.cursor() as cursor:
            cursor.execute("DROP SCHEMA public CASCADE")
            cursor.execute("CREATE SCHEMA public")
    connection.close()
    arguments, env = _libpq_command("pg_restore", connection.settings_dict)
    _run(
        [
            *arguments,
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "--exit-on-error",
            str(dump),
        ],
        env,
    )


def _put_files_in_place(restored: Path, files_root: Path) -> None:
    restored.mkdir(exist_ok=True)
    previous = None
    if files_root.exists():
        previous = files_root.with_name(f".{files_root.name}.replaced-{os.getpid()}")
        os.replace(files_root, previous)
    os.replace(restored, files_root)
    if previous is not None:
        shutil.rmtree(previous)


def _pending_migrations() -> int:
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    pending = len(executor.migration_plan(executor.loader.graph.leaf_nodes()))
    connection.close()
    return pending


# --- PostgreSQL client programs -----------------------------------------------------------------


def _libpq_command(program: str, database: dict) -> tuple[list[str], dict[str, str]]:
    """``program`` with the connection of Django's settings; the password goes in the
    environment, never on the command line."""
    executable = shutil.which(program)
    if executable is None:
        raise BackupError(f"{program} is missing: install PostgreSQL's client programs")
    arguments = [executable, "--no-password"]
    if database.get("HOST"):
        arguments += ["--host", str(database["HOST"])]
    if database.get("PORT"):
        arguments += ["--port", str(database["PORT"])]
    if database.get("USER"):
        arguments += ["--username", str(database["USER"])]
    env = {**os.environ}
    if database.get("PASSWORD"):
        env["PGPASSWORD"] = str(database["PASSWORD"])
    sslmode = (database.get("OPTIONS") or {}).get("sslmode")
    if sslmode:
        env["PGSSLMODE"] = str(sslmode)
    arguments += ["--dbname", str(database["NAME"])]
    return arguments, env


def _run(arguments: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(arguments, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        reason = lines[0] if lines else f"exit status {result.returncode}"
        raise BackupError(f"{Path(arguments[0]).name} failed: {reason}")
