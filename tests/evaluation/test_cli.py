"""``mamori evaluate`` end to end: a fresh database, real advisories, both formats, bad input."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from debian.debian_support import Version
from django.core.management import call_command
from django.core.management.base import CommandError

from mamori.verification.evidence import EvidenceError, validate_evidence
from tests.datafiles import DEBIAN12, DISTRO_INFO, EOL_PRODUCTS, KEV_FILE

from .factory import debian12_host, good_host
from .test_checks import VALIDATOR

BIN = Path(sys.executable).parent
AS_OF = "2026-11-25"
# Put back before known fixes: openssh (7 advisories, some older than 14 days) and libwebp
# (CVE-2023-4863, listed in CISA's KEV catalogue).
LOWERED = {"openssh": "1:9.2p1-2+deb12u1", "libwebp": "1.2.4-0.2"}
IMPORTS = [
    str(DEBIAN12),
    str(KEV_FILE),
    str(DISTRO_INFO / "debian.csv"),
    str(EOL_PRODUCTS / "debian.json"),
]


def expected_advisories() -> set[str]:
    """Independently of the matcher: the debian12 records for the lowered source packages
    whose fix is newer than the lowered version."""
    found = set()
    for path in DEBIAN12.glob("*.json"):
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
        for affected in record["affected"]:
            name = affected["package"]["name"]
            if name not in LOWERED:
                continue
            for event in (e for r in affected["ranges"] for e in r["events"]):
                if "fixed" in event and Version(event["fixed"]) > Version(LOWERED[name]):
                    found.add(record["id"])
    return found


def write_json(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def environment(tmp_path: Path, database_url: str | None = None) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_URL", "MAMORI_"))
    }
    env.update(
        SECRET_KEY="test-only-key-0123456789abcdefghijklmnopqrstuvwxyz",
        ALLOWED_HOSTS="localhost",
        MAMORI_VAR_DIR=str(tmp_path / "var"),
        DATABASE_URL=database_url or f"sqlite:///{tmp_path / 'fresh.sqlite3'}",
    )
    return env


@pytest.fixture
def fresh_database(tmp_path) -> Iterator[str]:
    """An empty database on the backend the suite runs on: a new SQLite file, or a new
    PostgreSQL database next to the suite's (created here, dropped afterwards)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        yield f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
        return
    import psycopg

    parsed = urlsplit(url)
    name = f"test_{parsed.path.lstrip('/') or 'mamori'}_cli_fresh"
    server = urlunsplit(parsed._replace(path="/postgres"))
    with psycopg.connect(server, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parsed._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(server, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def mamori(
    env: dict[str, str], *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "mamori"), *args],
        env=env,
        input=stdin,
        capture_output=True,
        timeout=300,
        check=False,
    )


def test_end_to_end_on_a_fresh_database(tmp_path, fresh_database):
    env = environment(tmp_path, fresh_database)
    patched = write_json(tmp_path / "patched.json", debian12_host())
    unpatched = write_json(tmp_path / "unpatched.json", debian12_host(LOWERED))

    # Before migrate: the database is not ready -- one line, status 1.
    before = mamori(env, "evaluate", str(patched), "--lang", "en")
    assert before.returncode == 1, before.stderr
    assert b"run 'mamori migrate'" in before.stderr
    assert len(before.stderr.strip().splitlines()) == 1

    assert mamori(env, "migrate", "-v0").returncode == 0

    # Migrated, nothing imported: evaluated (status 0), vulnerability checks undecided.
    empty = mamori(
        env, "evaluate", str(patched), "--format", "json", "--as-of", AS_OF, "--lang", "en"
    )
    assert empty.returncode == 0, empty.stderr
    assert b"no advisories are imported" in empty.stderr
    result = json.loads(empty.stdout)
    VALIDATOR.validate(result)
    assert result["controls"]["security_update_management"] == "unknown"
    assert result["catalogue"] == "CE-JP 2026.1"  # the newest bundled, before `catalogue load`
    statuses = {item["check"]: item["status"] for item in result["findings"]}
    assert statuses["UPD-03"] == "unknown"
    assert statuses["UPD-02"] == "unknown"  # no life-cycle data yet

    imported = mamori(env, "advisories", "import", "--quiet", *IMPORTS)
    assert imported.returncode == 0, imported.stderr

    # The real host, every fix installed: security update management passes.
    clean = mamori(env, "evaluate", str(patched), "--format", "json", "--as-of", AS_OF)
    assert clean.returncode == 0, clean.stderr
    result = json.loads(clean.stdout)
    VALIDATOR.validate(result)
    assert result["vulnerabilities"] == []
    assert result["os_support"]["supported"] is True  # Debian 12 on LTS until 2028-06-30
    assert result["controls"]["security_update_management"] == "pass"

    # Lowered source versions: exactly the expected advisories, overdue, one KEV-listed.
    dirty = mamori(
        env, "evaluate", str(unpatched), "--format", "json", "--as-of", AS_OF, "--lang", "en"
    )
    assert dirty.returncode == 0, dirty.stderr
    result = json.loads(dirty.stdout)
    VALIDATOR.validate(result)
    assert {item["advisory"] for item in result["vulnerabilities"]} == expected_advisories()
    assert {item["package"] for item in result["vulnerabilities"]} == set(LOWERED)
    assert result["controls"]["security_update_management"] == "fail"
    assert result["controls"]["firewalls"] == "pass"
    statuses = {item["check"]: item for item in result["findings"]}
    assert statuses["UPD-03"]["status"] == "fail"
    assert statuses["UPD-04"]["status"] == "fail"
    assert "MAMORI-DEB12-CVE-2023-4863-libwebp" in statuses["UPD-04"]["detail"]
    assert result["summary"]["overdue"] >= 1
    assert result["summary"]["kev"] == 1

    # Text, in English and in Japanese (the default).
    text = mamori(env, "evaluate", str(unpatched), "--as-of", AS_OF, "--lang", "en")
    assert text.returncode == 0
    report = text.stdout.decode()
    assert (
        report.index("Controls")
        < report.index("Failing checks")
        < report.index("Overdue vulnerabilities")
    )
    assert "  Security update management  FAIL" in report
    assert "MAMORI-DEB12-CVE-2023-4863-libwebp (CVE-2023-4863)" in report
    assert "KEV" in report
    japanese = mamori(env, "evaluate", str(unpatched), "--as-of", AS_OF).stdout.decode()
    assert "セキュリティアップデート管理  不合格" in japanese
    assert "期限超過の脆弱性" in japanese

    # Standard input, and the exit status a CI gate asks for.
    piped = mamori(
        env, "evaluate", "-", "--format", "json", "--as-of", AS_OF, stdin=unpatched.read_bytes()
    )
    assert json.loads(piped.stdout)["controls"] == result["controls"]
    gate = mamori(
        env, "evaluate", str(unpatched), "--as-of", AS_OF, "--fail-on-fail", "--lang", "en"
    )
    assert gate.returncode == 3
    assert b"controls failed: " in gate.stderr
    assert b"security_update_management" in gate.stderr
    passing = mamori(env, "evaluate", str(patched), "--as-of", AS_OF, "--fail-on-unknown")
    assert passing.returncode == 0, passing.stderr


# ---------------------------------------------------------------------------------------------
# In process (SQLite and PostgreSQL through pytest-django)


def evaluate_command(*args: str, stdin: bytes | None = None) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    options = {"stdout": out, "stderr": err}
    if stdin is not None:
        options["stdin"] = io.BytesIO(stdin)
    call_command("evaluate", *args, **options)
    return out.getvalue(), err.getvalue()


def refused(*args: str, stdin: bytes | None = None) -> str:
    with pytest.raises(CommandError) as raised:
        evaluate_command(*args, "--lang", "en", stdin=stdin)
    assert raised.value.returncode == 2
    message = str(raised.value)
    assert "\n" not in message
    return message


@pytest.mark.django_db
def test_catalogue_settings_come_from_the_database_then_the_bundled_file(tmp_path, catalogue):
    path = write_json(tmp_path / "host.json", good_host())
    out, _err = evaluate_command(str(path), "--format", "json", "--as-of", AS_OF)
    assert json.loads(out)["catalogue"] == catalogue.version
    catalogue.settings = {**catalogue.settings, "lockout_attempts": 4}
    catalogue.save()
    out, _err = evaluate_command(str(path), "--format", "json", "--catalogue", catalogue.version)
    result = json.loads(out)
    assert result["settings"]["lockout_attempts"] == 4
    statuses = {item["check"]: item["status"] for item in result["findings"]}
    assert statuses["UAC-04"] == "fail"  # faillock deny 5 > 4
    message = refused(str(path), "--catalogue", "CE-JP 1999")
    assert "unknown catalogue version 'CE-JP 1999'" in message
    assert "CE-JP 2026" in message


@pytest.mark.django_db
def test_text_report_cleans_hostile_strings(tmp_path):
    evidence = good_host()
    evidence["host"]["hostname"] = "web\x1b[2J\x1b]0;owned\x07"
    evidence["accounts"]["users"].append(
        {
            "name": "\u202eroot",
            "uid": 0,
            "gid": 0,
            "shell": "/bin/sh",
            "home": "/",
            "login_shell": True,
            "password": "empty",
            "hash_scheme": None,
            "weak_hash": False,
        }
    )
    out, _err = evaluate_command(str(write_json(tmp_path / "h.json", evidence)), "--lang", "en")
    assert "\x1b" not in out
    assert "\u202e" not in out
    assert "web\\u001b[2J" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"hello", "not valid JSON: Expecting value (line 1, column 1)"),
        (b"\xff\xfe{}", "not UTF-8 text (byte 0)"),
        (b'{"schema": NaN}', "NaN is not a JSON number"),
        (b'{"n": ' + b"9" * 5000 + b"}", "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b"[1, 2]", "not valid evidence at $: the evidence must be a JSON object"),
        (
            b'{"schema": "mamori.evidence/2"}',
            "not valid evidence at $.schema: expected 'mamori.evidence/1'",
        ),
    ],
)
def test_bad_input_is_one_line_and_status_2(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    assert message in refused(str(path))
    assert message in refused("-", stdin=content)


def test_truncated_evidence(tmp_path):
    text = json.dumps(good_host())
    path = tmp_path / "cut.json"
    path.write_text(text[: len(text) // 2], encoding="utf-8")
    message = refused(str(path))
    assert message.startswith(f"{path}: not valid JSON: ")
    assert "(line 1, column " in message


def test_unreadable_paths(tmp_path):
    assert "cannot read: No such file or directory" in refused(str(tmp_path / "missing.json"))
    assert "cannot read: Is a directory" in refused(str(tmp_path))


@pytest.mark.parametrize(
    ("change", "path", "reason"),
    [
        (
            lambda e: e["packages"]["items"][0].update(version=5),
            "$.packages.items[0].version",
            "is not of type 'string'",
        ),
        (lambda e: e.update(firewall="on"), "$.firewall", "is not of type 'object'"),
        (
            lambda e: e["accounts"]["users"][0].update(uid="zero"),
            "$.accounts.users[0].uid",
            "'zero' is not of type",
        ),
        (lambda e: e.pop("packages"), "$", "'packages' is a required property"),
        (
            lambda e: e["ssh"]["settings"].update(deep=_nested(40)),
            "$.ssh.settings.deep",
            "nested deeper than 32 levels",
        ),
        (lambda e: e["host"].update(hostname="x" * 70_000), "$.host.hostname", "longer than 65536"),
    ],
)
def test_wrong_types_name_the_json_path(tmp_path, change, path, reason):
    evidence = good_host()
    change(evidence)
    message = refused(str(write_json(tmp_path / "wrong.json", evidence)))
    assert f"not valid evidence at {path}" in message
    assert reason in message
    with pytest.raises(EvidenceError) as raised:
        validate_evidence(evidence)
    assert raised.value.path.startswith(path)


def _nested(depth: int) -> dict:
    node: dict = {}
    for _ in range(depth):
        node = {"x": node}
    return node


def test_a_million_packages_are_refused_quickly_and_without_loading_them(tmp_path):
    evidence = good_host()
    item = evidence["packages"]["items"][0]
    evidence["packages"]["items"] = [item] * 1_000_000

    # Refused on the count, before any item is looked at.
    with pytest.raises(EvidenceError) as raised:
        validate_evidence(evidence)
    assert raised.value.path == "$.packages.items"
    assert "more than 200000 items" in raised.value.reason

    # As a file (about 150 MB): refused after reading 16 MiB, by a process that stays small.
    path = tmp_path / "million.json"
    with path.open("w", encoding="utf-8") as handle:
        head = json.dumps({**evidence, "packages": {**evidence["packages"], "items": []}})
        prefix, _, suffix = head.partition('"items": []')
        handle.write(prefix + '"items": [')
        line = json.dumps(item)
        handle.write(",".join([line] * 1_000_000))
        handle.write("]" + suffix)
    assert path.stat().st_size > 100 * 1024 * 1024
    # A fresh parent whose only child is the command, so RUSAGE_CHILDREN is that child's peak.
    probe = (
        "import resource, subprocess, sys, time\n"
        "started = time.perf_counter()\n"
        "run = subprocess.run(sys.argv[1:], capture_output=True)\n"
        "elapsed = time.perf_counter() - started\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "sys.stdout.write(f'{run.returncode} {elapsed} {peak}\\n')\n"
        "sys.stdout.write(run.stderr.decode())\n"
    )
    measured = subprocess.run(
        [sys.executable, "-c", probe, str(BIN / "mamori"), "evaluate", str(path), "--lang", "en"],
        env=environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    first, stderr = measured.stdout.split("\n", 1)
    status, elapsed, peak_kib = first.split()
    assert int(status) == 2
    assert "larger than 16 MiB" in stderr
    assert int(peak_kib) < 300 * 1024  # Django plus one 16 MiB buffer, not 150 MB of JSON
    print(
        f"1,000,000 packages: refused in {float(elapsed):.2f} s, peak RSS {int(peak_kib) // 1024} MiB"
    )
    path.unlink()
