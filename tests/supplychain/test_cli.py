"""``mamori supplychain analyse``: output formats, bad input, and no database access.

The in-process tests run without the ``db`` fixture, so pytest-django fails any database query;
the subprocess tests check that the SQLite file they point ``DATABASE_URL`` at never appears."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command

GRAPH = {
    "schema": "mamori.supplygraph/1",
    "nodes": [
        {
            "id": "bank-a:core",
            "entity": "bank-a",
            "name": "勘定系",
            "country": "JP",
            "critical": True,
            "certified": True,
            "disclosure": "full",
        },
        {
            "id": "dc-1",
            "entity": "dc-co",
            "name": "DC 1",
            "country": "JP",
            "critical": False,
            "certified": True,
            "disclosure": "full",
        },
        {
            "id": "cloud-x",
            "entity": "cloud-co",
            "name": "Cloud X",
            "country": "JP",
            "critical": False,
            "certified": False,
            "disclosure": "partial",
        },
        {
            "id": "grid",
            "entity": "power-co",
            "name": "Grid",
            "country": "JP",
            "critical": False,
            "certified": False,
            "disclosure": "none",
        },
    ],
    "requirements": [
        {"node": "bank-a:core", "need": "hosting", "providers": ["dc-1", "cloud-x"]},
        {"node": "dc-1", "need": "power", "providers": ["grid"]},
        {"node": "cloud-x", "need": "power", "providers": ["grid"]},
    ],
}


@pytest.fixture
def graph_file(tmp_path):
    path = tmp_path / "graph.json"
    path.write_text(json.dumps(GRAPH, ensure_ascii=False), encoding="utf-8")
    return path


def analyse(*args: str) -> str:
    out = io.StringIO()
    call_command("supplychain", "analyse", *args, stdout=out)
    return out.getvalue()


def test_json_output(graph_file):
    result = json.loads(analyse(str(graph_file), "--format", "json"))
    assert result["spof"] == {"bank-a:core": ["grid"]}
    assert result["hidden_convergence"][0]["converges_on"] == ["grid"]
    assert result["single_country"][0]["country"] == "JP"
    assert result["uncertified_on_critical_path"] == ["cloud-x", "grid"]
    assert set(result) >= {
        "spof",
        "sole_source",
        "concentration",
        "opacity",
        "uncertified_on_critical_path",
    }


def test_json_is_compact_by_default_and_indented_on_request(graph_file):
    compact = analyse(str(graph_file), "--format", "json")
    assert compact.count("\n") == 1
    assert compact.endswith("}\n")
    assert '"spof":{"bank-a:core":["grid"]}' in compact
    indented = analyse(str(graph_file), "--format", "json", "--indent")
    assert indented.startswith('{\n  "schema": "mamori.supplyanalysis/1",\n')
    assert json.loads(indented) == json.loads(compact)


def test_text_output_japanese_by_default_and_english(graph_file):
    assert "単一障害点 (1 件): grid" in analyse(str(graph_file))
    english = analyse(str(graph_file), "--format", "text", "--lang", "en")
    assert "Single points of failure (1): grid" in english


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not valid JSON"),
        (json.dumps({**GRAPH, "schema": "mamori.supplygraph/9"}), "unsupported version"),
        (
            json.dumps(
                {**GRAPH, "requirements": [{"node": "dc-1", "need": "x", "providers": ["dc-1"]}]}
            ),
            "self-loop: node 'dc-1'",
        ),
    ],
)
def test_bad_input_is_a_command_error(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CommandError, match=message) as raised:
        analyse(str(path))
    assert raised.value.returncode == 2
    assert str(raised.value).startswith(f"{path}: ")


def _run(*args: str, tmp_path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "SECRET_KEY": "test-only-key-0123456789abcdefghijklmnopqrstuvwxyz",
        "ALLOWED_HOSTS": "localhost",
        "MAMORI_VAR_DIR": str(tmp_path / "var"),
        # A fresh SQLite path: any connection would create the file.
        "DATABASE_URL": f"sqlite:///{tmp_path}/db/db.sqlite3",
    }
    return subprocess.run(
        [sys.executable, "-m", "mamori.cli", "supplychain", "analyse", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_command_line_without_a_database(graph_file, tmp_path):
    done = _run(str(graph_file), "--format", "json", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["spof"] == {"bank-a:core": ["grid"]}
    assert json.loads(done.stdout) == json.loads(analyse(str(graph_file), "--format", "json"))
    assert not (tmp_path / "db" / "db.sqlite3").exists()


def test_command_line_bad_input_one_line_no_traceback(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**GRAPH, "nodes": GRAPH["nodes"] + GRAPH["nodes"][:1]}))
    done = _run(str(bad), tmp_path=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "duplicate node id 'bank-a:core'" in lines[0]
    assert "Traceback" not in done.stderr

    missing = _run(str(tmp_path / "absent.json"), tmp_path=tmp_path)
    assert missing.returncode == 2
    assert "absent.json: cannot read the file" in missing.stderr

    big = tmp_path / "big.json"
    big.write_text(" " * (1024 * 1024 + 1) + json.dumps(GRAPH))
    too_big = _run(str(big), "--max-size", "1", tmp_path=tmp_path)
    assert too_big.returncode == 2
    assert "over the limit of 1,048,576 bytes" in too_big.stderr
    assert "Traceback" not in too_big.stderr


# --- import and export (these need the database) -----------------------------------------------


@pytest.mark.django_db
def test_import_then_export_round_trips_through_an_organisation(tmp_path, capsys):
    from mamori.audit.models import AuditEvent
    from mamori.organisations.models import Category, Organisation

    bank = Organisation.objects.create(
        name_ja="銀行", name_en="Bank", category=Category.FINANCIAL_INSTITUTION
    )
    document = {
        "schema": "mamori.supplygraph/1",
        "nodes": [
            {
                "id": "core",
                "entity": "bank",
                "name": "Core",
                "country": "JP",
                "critical": True,
                "certified": True,
                "disclosure": "full",
            },
            {
                "id": "dc",
                "entity": "dc-co",
                "name": "DC",
                "country": "JP",
                "critical": False,
                "certified": False,
                "disclosure": "none",
            },
        ],
        "requirements": [{"node": "core", "need": "hosting", "providers": ["dc"]}],
    }
    source = tmp_path / "in.json"
    source.write_text(json.dumps(document), encoding="utf-8")
    call_command("supplychain", "import", str(bank.pk), str(source))
    assert str(bank) in capsys.readouterr().out
    assert AuditEvent.objects.filter(action="supplychain.graph_imported").count() == 1

    target = tmp_path / "out.json"
    call_command("supplychain", "export", str(bank.pk), "--output", str(target))
    exported = json.loads(target.read_text(encoding="utf-8"))
    assert exported["schema"] == "mamori.supplygraph/1"
    names = {node["name"] for node in exported["nodes"]}
    assert {"Core", "DC"} <= names
    (requirement,) = exported["requirements"]
    assert requirement["need"] == "hosting"

    # Importing the same ids again is refused and writes nothing.
    with pytest.raises(CommandError) as raised:
        call_command("supplychain", "import", str(bank.pk), str(source))
    assert raised.value.returncode == 2
    assert AuditEvent.objects.filter(action="supplychain.graph_imported").count() == 1


@pytest.mark.django_db
def test_an_unknown_organisation_is_one_clear_error(tmp_path):
    with pytest.raises(CommandError) as raised:
        call_command("supplychain", "export", "999999")
    assert raised.value.returncode == 2
    assert "999999" in str(raised.value)
