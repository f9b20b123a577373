"""The deployment's files on their own, without a running stack: the systemd units verify and
run what the Procfile runs, the nginx templates render only from set variables, and every
variable is documented."""

from __future__ import annotations

import os
import re
import subprocess

from bench.stack import BIN, DEPLOY, ROOT

from tests.conftest import require_tool

RENDER = DEPLOY / "nginx" / "render.sh"


def test_render_fills_only_its_own_variables_and_refuses_an_unset_one(tmp_path):
    template = tmp_path / "site.template"
    template.write_text(
        "listen ${MAMORI_HTTPS_LISTEN} ssl; return 301 $scheme://$host${MAMORI_X};\n"
    )
    env = {"PATH": os.environ["PATH"], "MAMORI_HTTPS_LISTEN": "127.0.0.1:8443", "MAMORI_X": "/a"}
    output = tmp_path / "site.conf"
    done = subprocess.run(
        [str(RENDER), str(template), str(output)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert output.read_text() == "listen 127.0.0.1:8443 ssl; return 301 $scheme://$host/a;\n"

    del env["MAMORI_X"]
    output.unlink()
    refused = subprocess.run(
        [str(RENDER), str(template), str(output)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 1
    assert refused.stderr == f"{RENDER}: MAMORI_X is not set (needed by {template})\n"
    assert not output.exists()
    assert not list(tmp_path.glob("*.tmp"))


def systemd_unit_commands() -> dict[str, str]:
    commands = {}
    for unit in (DEPLOY / "systemd").glob("mamori-*.service"):
        start = re.search(r"^ExecStart=(.+)$", unit.read_text(encoding="utf-8"), re.MULTILINE)
        commands[unit.stem.removeprefix("mamori-")] = start.group(1)
    return commands


def test_systemd_units_are_valid_and_run_what_the_procfile_runs(tmp_path):
    analyse = require_tool("systemd-analyze")
    for unit in (DEPLOY / "systemd").iterdir():
        # Installed under /opt/mamori as the README says; here, this checkout.
        text = unit.read_text(encoding="utf-8").replace("/opt/mamori/.venv/bin", str(BIN))
        (tmp_path / unit.name).write_text(text.replace("/opt/mamori", str(ROOT)))
    result = subprocess.run(
        [analyse, "verify", "--man=no", *sorted(str(path) for path in tmp_path.iterdir())],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""

    from honcho.environ import parse_procfile

    procfile = parse_procfile((DEPLOY / "Procfile").read_text(encoding="utf-8")).processes
    units = systemd_unit_commands()
    assert set(units) == {"web", "worker", "beat"} == set(procfile) - {"proxy"}
    for name, command in units.items():
        # The same program and arguments; only the variable syntax and the host-name specifier
        # differ between a shell and systemd.
        expected = re.sub(r"\$\{(\w+):-[^}]*\}", r"${\1}", procfile[name].removeprefix("exec "))
        assert command.replace("/opt/mamori/.venv/bin/", "").replace("%H", "%h") == expected


def test_the_templates_name_only_variables_the_deploy_readme_documents():
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    names = set()
    for template in (DEPLOY / "nginx").glob("*.template"):
        names |= set(re.findall(r"\$\{(MAMORI_[A-Z0-9_]+)\}", template.read_text(encoding="utf-8")))
    gunicorn = (DEPLOY / "gunicorn.conf.py").read_text(encoding="utf-8")
    names |= set(re.findall(r"\"(MAMORI_[A-Z0-9_]+)\"", gunicorn))
    undocumented = sorted(name for name in names if f"`{name}`" not in readme)
    assert not undocumented
