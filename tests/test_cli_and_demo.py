"""The demo's bundled roster and the installed console scripts ``mamori`` and ``mamori-agent``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from mamori.demo import builder
from mamori.organisations.models import Category

BIN = Path(sys.executable).parent
ROSTER_CATEGORIES = {
    "financial_institution": "金融機関等",
    "it_vendor": "ITベンダー等",
    "industry_association": "業界団体",
    "government": "政府機関等",
}


def test_the_bundled_roster_is_the_working_group_36_members_by_category_and_the_convenor():
    """The roster `mamori demo` loads (the working group as the FSA announced it, so `make run`
    works on any machine): 36 members in the four categories, the FSA convening, not a member.
    The demo itself is tested in tests/demo/."""
    roster = json.loads(builder.WORKING_GROUP_FILE.read_text(encoding="utf-8"))
    members = roster["organisations"]
    assert len(members) == 36
    assert roster["categories"] == ROSTER_CATEGORIES
    assert set(ROSTER_CATEGORIES) <= set(Category.values)
    assert Counter(entry["category"] for entry in members) == {
        "financial_institution": 6,
        "it_vendor": 12,
        "industry_association": 14,
        "government": 4,
    }
    for key in ("name_ja", "name_en"):
        names = [entry[key] for entry in members]
        assert all(name.strip() == name and name for name in names), key
        assert len(set(names)) == len(names), key
    convenor = roster["convenor"]
    assert (convenor["name_ja"], convenor["name_en"]) == ("金融庁", "Financial Services Agency")
    assert convenor["name_en"] not in {entry["name_en"] for entry in members}
    assert convenor["name_ja"] not in {entry["name_ja"] for entry in members}
    assert "not on the member list" in convenor["note"]
    assert roster["source"].startswith("FSA announcement")


# --- Console scripts --------------------------------------------------------------------------


def run(*command: str | Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(part) for part in command],
        env=env if env is not None else os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_mamori_console_script_is_the_management_entry_point(tmp_path):
    mamori = BIN / "mamori"
    assert mamori.is_file()
    assert os.access(mamori, os.X_OK)
    env = {**os.environ, "MAMORI_VAR_DIR": str(tmp_path)}

    helped = run(mamori, "--help", env=env)
    assert helped.returncode == 0, helped.stderr
    for command in ("migrate", "createsuperuser", "demo", "audit", "catalogue", "certificates"):
        assert command in helped.stdout, command

    checked = run(mamori, "check", env=env)
    assert checked.returncode == 0, checked.stderr
    assert "System check identified no issues" in checked.stdout

    listing = run(mamori, "certificates", "list", "--format", "xml", env=env)
    assert listing.returncode != 0
    assert "invalid choice: 'xml'" in listing.stderr


def test_mamori_agent_is_installed_and_answers_usage_errors_in_one_line():
    agent = BIN / "mamori-agent"
    assert agent.is_file()
    version = run(agent, "--version")
    assert version.returncode == 0
    assert version.stdout.strip().startswith("mamori-agent ")
    for command in ([agent], [sys.executable, "-m", "mamori_agent"]):
        result = run(*command)
        assert result.returncode == 2, command
        assert result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1
        assert "COMMAND" in result.stderr
    missing_root = run(agent, "collect", "--root", "/nonexistent-mamori-root")
    assert missing_root.returncode == 2
    assert missing_root.stderr.strip() == (
        "mamori-agent: --root /nonexistent-mamori-root: no such directory"
    )
