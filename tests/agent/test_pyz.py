"""``make agent`` builds one file, ``dist/mamori-agent.pyz``, that runs under Python 3.9 and 3.11
with nothing but the standard library."""

from __future__ import annotations

import json
import stat
import subprocess
import zipfile

import pytest

from mamori_agent import __version__

from .conftest import clean_environment


def test_the_archive(pyz):
    with open(pyz, "rb") as handle:
        assert handle.readline() == b"#!/usr/bin/env python3\n"
    assert pyz.stat().st_mode & stat.S_IXUSR
    with zipfile.ZipFile(pyz) as archive:
        names = set(archive.namelist())
    assert "__main__.py" in names
    assert {"mamori_agent/cli.py", "mamori_agent/rootfs.py", "mamori_agent/collect/nft.py"} <= names
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)
    assert not list(pyz.parent.glob("*.tmp"))


@pytest.mark.parametrize("interpreter", ["python39", "python311"])
def test_the_archive_runs(
    pyz, interpreter, request, debian_root, alpine_root, rocky_root, tmp_path, assert_valid
):
    python = request.getfixturevalue(interpreter)
    environment = clean_environment()
    version = subprocess.run(
        [python, str(pyz), "--version"],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
        cwd=tmp_path,
    )
    assert (version.returncode, version.stdout) == (0, f"mamori-agent {__version__}\n")
    for arguments in (
        ["collect", "--root", str(debian_root)],
        ["collect", "--root", str(alpine_root)],
        ["collect", "--root", str(rocky_root)],
        ["collect"],
    ):
        output = tmp_path / "evidence.json"
        result = subprocess.run(
            [python, str(pyz), *arguments, "--output", str(output)],
            capture_output=True,
            text=True,
            env=environment,
            check=False,
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        evidence = assert_valid(json.loads(output.read_text()))
        major_minor = ".".join(evidence["agent"]["python"].split(".")[:2])
        assert major_minor == {"python39": "3.9", "python311": "3.11"}[interpreter]
        assert evidence["packages"]["items"]
    usage = subprocess.run(
        [python, str(pyz), "collect", "--root", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
        cwd=tmp_path,
    )
    assert usage.returncode == 2
    assert len(usage.stderr.splitlines()) == 1


def test_python39_and_311_collect_the_same_evidence(
    pyz, python39, python311, debian_root, alpine_root, rocky_root, tmp_path
):
    def collected(python: str, root) -> dict:
        output = tmp_path / "evidence.json"
        subprocess.run(
            [python, str(pyz), "collect", "--root", str(root), "-o", str(output)],
            env=clean_environment(),
            check=True,
        )
        evidence = json.loads(output.read_text())
        for volatile in ("agent", "collected_at", "duration_ms"):
            evidence.pop(volatile)
        return evidence

    for root in (debian_root, alpine_root, rocky_root):
        assert collected(python39, root) == collected(python311, root), root.name


@pytest.mark.django_db
def test_the_hosts_page_hands_out_the_agent(
    world, pyz, python39, python311, debian_root, tmp_path, assert_valid
):
    """The agent file offered on the hosts page is the archive ``make agent`` builds, and it
    runs: ``--version`` and ``collect --root`` under Python 3.9 and 3.11."""
    from django.urls import reverse

    from tests.conftest import client_for

    url = reverse("verification:agent_download")
    response = client_for(world.admin).get(url)
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="mamori-agent.pyz"'
    assert response["Content-Type"] == "application/octet-stream"
    downloaded = tmp_path / "mamori-agent.pyz"
    downloaded.write_bytes(b"".join(response.streaming_content))
    with zipfile.ZipFile(downloaded) as served, zipfile.ZipFile(pyz) as built:
        assert sorted(served.namelist()) == sorted(built.namelist())
        for name in built.namelist():
            assert served.read(name) == built.read(name), name
    assert downloaded.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    for python in (python39, python311):
        version = subprocess.run(
            [python, str(downloaded), "--version"],
            capture_output=True,
            text=True,
            env=clean_environment(),
            check=False,
            cwd=tmp_path,
        )
        assert (version.returncode, version.stdout) == (0, f"mamori-agent {__version__}\n")
        output = tmp_path / "evidence.json"
        collected = subprocess.run(
            [python, str(downloaded), "collect", "--root", str(debian_root), "-o", str(output)],
            capture_output=True,
            text=True,
            env=clean_environment(),
            check=False,
            cwd=tmp_path,
        )
        assert collected.returncode == 0, collected.stderr
        assert assert_valid(json.loads(output.read_text()))["packages"]["items"]
    # Built once and kept: the next download is the same file, not a new build.
    again = client_for(world.contributor).get(url)
    assert b"".join(again.streaming_content) == downloaded.read_bytes()
    # Only those who set up hosts get it; the rest learn nothing (404), strangers sign in first.
    for persona in ("signatory", "assessor", "owner", "outsider"):
        assert client_for(getattr(world, persona)).get(url).status_code == 404, persona
    anonymous = client_for(world.admin)
    anonymous.logout()
    assert anonymous.get(url).status_code == 302
