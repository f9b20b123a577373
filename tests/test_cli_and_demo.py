"""``mamori demo`` and the installed console scripts ``mamori`` and ``mamori-agent``."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db.models import Count

from mamori.accounts.models import User
from mamori.assessments.models import Assessment, State
from mamori.audit.models import AuditEvent
from mamori.audit.services import verify_trail
from mamori.certificates.models import Certificate, Status
from mamori.demo import builder
from mamori.organisations.models import Category, Membership, Organisation, Role

BIN = Path(sys.executable).parent
BUNDLED_WORKING_GROUP = builder.WORKING_GROUP_FILE


def working_group() -> list[dict]:
    return json.loads(BUNDLED_WORKING_GROUP.read_text(encoding="utf-8"))["organisations"]


def run_demo(settings, tmp_path) -> str:
    settings.VAR_DIR = tmp_path  # the demo credentials file goes here, not into var/
    out = io.StringIO()
    call_command("demo", stdout=out)
    return out.getvalue()


def snapshot_counts() -> dict[str, int]:
    return {
        "organisations": Organisation.objects.count(),
        "users": User.objects.count(),
        "memberships": Membership.objects.count(),
        "assessments": Assessment.objects.count(),
        "certificates": Certificate.objects.count(),
        "audit": AuditEvent.objects.count(),
    }


def test_bundled_working_group_file_lists_the_working_group():
    """The bundled roster lets ``make run`` work anywhere, with nothing read outside the clone."""
    bundled = json.loads(BUNDLED_WORKING_GROUP.read_text(encoding="utf-8"))
    assert len(bundled["organisations"]) == 37


@pytest.mark.django_db
def test_demo_loads_the_working_group_every_role_state_and_status_once(settings, tmp_path):
    # One test for content and idempotence: building the demo walks a dozen assessments
    # through the real workflow and takes half a minute.
    output = run_demo(settings, tmp_path)

    # The 37 organisations of the working group, with their categories and both names.
    for entry in working_group():
        organisation = Organisation.objects.get(name_en=entry["name_en"])
        assert organisation.name_ja == entry["name_ja"]
        assert organisation.category == entry["category"]
    assert {entry["category"] for entry in working_group()} <= set(Category.values)

    body = Organisation.objects.get(name_en=builder.CERTIFICATION_BODY[1])
    assert body.category == Category.CERTIFICATION_BODY
    assessors = Membership.objects.filter(organisation=body, role=Role.ASSESSOR)
    assert assessors.count() == 2
    assert Membership.objects.filter(role=Role.SCHEME_OWNER).count() == 1
    roles = set(Membership.objects.values_list("role", flat=True))
    assert roles == set(Role.values)
    # Assessors and the scheme owner have MFA set up, as the product requires.
    for membership in Membership.objects.filter(role__in=(Role.ASSESSOR, Role.SCHEME_OWNER)):
        assert membership.user.totpdevice_set.filter(confirmed=True).exists()

    states = dict(Assessment.objects.values_list("state").annotate(n=Count("pk")))
    assert set(states) == set(State.values)
    statuses = [certificate.status for certificate in Certificate.objects.all()]
    for status in Status.values:
        assert status in statuses, status
    assert Certificate.objects.currently_valid().exists()

    # Every demo user can log in with the password printed, and the audit trail is intact.
    credentials_file = tmp_path / "demo-credentials.json"
    credentials = json.loads(credentials_file.read_text(encoding="utf-8"))
    assert {row["role"] for row in credentials} == set(Role.values)
    for row in credentials:
        assert row["username"] in output
        assert row["password"] in output
        assert User.objects.get(username=row["username"]).check_password(row["password"])
    assert credentials_file.stat().st_mode & 0o777 == 0o600
    assert verify_trail() is None

    # Running it again changes nothing and still shows the passwords.
    before = snapshot_counts()
    # The working group, the certification body and the scheme owner; plus the suppliers that
    # registered themselves in the supply-chain demo's surveys (one claim each).
    claimed = AuditEvent.objects.filter(action="supplychain.invitation_claimed").count()
    assert claimed > 0
    assert before["organisations"] == 37 + 2 + claimed
    again = run_demo(settings, tmp_path)
    assert snapshot_counts() == before
    assert "Demo data is already loaded." in again
    for row in credentials:
        assert row["password"] in again


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
