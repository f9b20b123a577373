"""The audit trail: every state change, mark, decision and certificate event is appended to a
hash chain, and ``mamori audit verify`` names the first entry that was altered or removed."""

from __future__ import annotations

import io
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from mamori.assessments import services
from mamori.assessments.models import Answer, Mark, Outcome, State, Verdict
from mamori.audit import chain
from mamori.audit.models import AuditEvent, AuditHead
from mamori.audit.services import verify_trail
from mamori.catalogue import samples
from mamori.certificates.services import revoke
from mamori.core.errors import WrongState
from tests.certificates import database_url_of_test_db

MAMORI = Path(sys.executable).parent / "mamori"


def trail() -> list[AuditEvent]:
    return list(AuditEvent.objects.order_by("seq"))


def state_changes(assessment) -> list[tuple[str, str, str]]:
    return [
        (event.action, event.details["from"], event.details["to"])
        for event in AuditEvent.objects.filter(
            object_type="assessments.assessment", object_id=str(assessment.pk)
        ).order_by("seq")
        if "from" in event.details and "to" in event.details
    ]


def count(action: str, assessment=None) -> int:
    events = AuditEvent.objects.filter(action=action)
    if assessment is not None:
        events = events.filter(object_id=str(assessment.pk))
    return events.count()


def verify_command() -> str:
    out = io.StringIO()
    call_command("audit", "verify", stdout=out)
    return out.getvalue()


# --- What gets recorded -------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_pass_records_every_change_mark_decision_and_certificate_event(world):
    assessment = world.passed()
    certificate = assessment.certificate

    assert state_changes(assessment) == [
        ("assessment.submitted", State.DRAFT, State.SUBMITTED),
        ("assessment.review_started", State.SUBMITTED, State.IN_REVIEW),
        ("assessment.decided", State.IN_REVIEW, State.PASSED),
    ]
    assert count("assessment.started", assessment) == 1
    assert count("assessment.declared", assessment) == 1
    # One entry per answer saved and per mark given.
    answers = Answer.objects.filter(assessment=assessment).count()
    marks = Mark.objects.filter(answer__assessment=assessment).count()
    assert answers > 50
    assert marks > 40
    assert count("answer.saved", assessment) == answers
    assert count("answer.marked", assessment) == marks
    issued = AuditEvent.objects.get(action="certificate.issued")
    assert issued.object_type == "certificates.certificate"
    assert issued.object_id == str(certificate.pk)
    assert issued.actor_id == world.assessor.pk
    assert issued.organisation == world.bank
    decided = AuditEvent.objects.get(action="assessment.decided")
    assert decided.details["outcome"] == Outcome.PASS
    assert decided.actor_id == world.assessor.pk
    # The certificate comes after the decision that made it.
    assert issued.seq > decided.seq

    revoke(world.assessor, world.access(world.assessor), certificate.pk, "incident")
    revoked = AuditEvent.objects.get(action="certificate.revoked")
    assert revoked.details["number"] == certificate.number
    # The reason is kept as a digest only: the trail proves it without copying it.
    assert revoked.details["after_digest"] == chain.digest({"reason": "incident"})
    assert "incident" not in json.dumps(revoked.details)

    entries = trail()
    assert [event.seq for event in entries] == list(range(1, len(entries) + 1))
    assert entries[0].prev_hash == chain.GENESIS
    assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(entries))
    assert AuditHead.objects.get().seq == len(entries)
    assert verify_trail() is None
    assert verify_command().strip() == f"audit trail intact: {len(entries)} entries verified"


@pytest.mark.django_db
def test_a_fail_with_clarification_and_resubmission_is_recorded_step_by_step(world):
    assessor, admin = world.assessor, world.admin
    assessment = world.submitted(failing={"A6.4"})
    world.mark_all(assessment, {"A5.1": Verdict.NEEDS_INFORMATION})
    services.request_clarification(assessor, world.access(assessor), assessment.pk)
    services.respond_to_clarification(admin, world.access(admin), assessment.pk)
    world.mark_all(assessment)
    services.decide(assessor, world.access(assessor), assessment.pk, Outcome.FAIL, "fix A6.4")
    snapshot = services.Snapshot.load(assessment)
    services.save_answer(
        admin, world.access(admin), assessment.pk, "A6.4", "yes", snapshot.answers["A6.4"].version
    )
    world.sign(assessment)
    services.resubmit(admin, world.access(admin), assessment.pk)
    world.mark_all(assessment)
    services.decide(assessor, world.access(assessor), assessment.pk, Outcome.PASS, "fixed")

    assert state_changes(assessment) == [
        ("assessment.submitted", State.DRAFT, State.SUBMITTED),
        ("assessment.review_started", State.SUBMITTED, State.IN_REVIEW),
        ("assessment.clarification_requested", State.IN_REVIEW, State.CLARIFICATION),
        ("assessment.clarified", State.CLARIFICATION, State.IN_REVIEW),
        ("assessment.decided", State.IN_REVIEW, State.FAILED),
        ("assessment.resubmitted", State.FAILED, State.RESUBMITTED),
        ("assessment.review_started", State.RESUBMITTED, State.IN_REVIEW),
        ("assessment.decided", State.IN_REVIEW, State.PASSED),
    ]
    decisions = AuditEvent.objects.filter(action="assessment.decided").order_by("seq")
    assert [event.details["outcome"] for event in decisions] == [Outcome.FAIL, Outcome.PASS]
    assert "A6.4" in decisions[0].details["failed"]
    flagged = AuditEvent.objects.filter(action="answer.marked", details__question="A5.1")
    assert [event.details["verdict"] for event in flagged.order_by("seq")][:2] == [
        Verdict.NEEDS_INFORMATION,
        Verdict.COMPLIANT,
    ]
    fixed = AuditEvent.objects.filter(action="answer.saved", details__question="A6.4")
    assert fixed.count() == 2  # the failing answer, then the fix
    assert count("certificate.issued") == 1
    assert verify_trail() is None


@pytest.mark.django_db
def test_a_refused_change_leaves_no_entry(world):
    """The entry is written in the change's own transaction: no change, no entry."""
    assessment = world.start()
    before = AuditEvent.objects.count()
    with pytest.raises(WrongState):
        services.submit(world.admin, world.access(world.admin), assessment.pk)
    assert AuditEvent.objects.count() == before
    assert verify_trail() is None


@pytest.mark.django_db
def test_an_empty_trail_verifies(db):
    assert verify_command().strip() == "audit trail intact: 0 entries verified"


# --- Tampering ----------------------------------------------------------------------------------


def build_trail(world, answers: int = 8) -> int:
    """A short real trail: an assessment started and some answers saved. Returns its length."""
    assessment = world.start()
    snapshot = services.Snapshot.load(assessment)
    for question in snapshot.questions[:answers]:
        value = "whole" if question.qid == "A2.1" else samples.compliant_value(question.rules)
        services.save_answer(
            world.admin, world.access(world.admin), assessment.pk, question.qid, value, 0
        )
    total = AuditEvent.objects.count()
    assert total == answers + 1
    assert verify_trail() is None
    return total


def execute(sql: str, params: list) -> None:
    """Change the table behind the ORM's back, as someone with database access could."""
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(sql.replace("{table}", table), params)
        assert cursor.rowcount == 1


def alter_details(seq: int) -> None:
    execute(
        "UPDATE {table} SET details = %s WHERE seq = %s",
        [json.dumps({"question": "A1.1", "version": 99}), seq],
    )


def alter_action(seq: int) -> None:
    execute("UPDATE {table} SET action = %s WHERE seq = %s", ["answer.viewed", seq])


def delete(seq: int) -> None:
    execute("DELETE FROM {table} WHERE seq = %s", [seq])


def change_prev_hash(seq: int) -> None:
    execute("UPDATE {table} SET prev_hash = %s WHERE seq = %s", ["f" * 64, seq])


def alter_and_rehash(seq: int) -> None:
    """A careful forger rewrites an entry and recomputes its own hash: the next entry, which
    still names the old hash, gives it away."""
    event = AuditEvent.objects.get(seq=seq)
    event.details = {**event.details, "version": 42}
    new_hash = chain.entry_hash(event.chain_fields(), event.prev_hash)
    execute(
        "UPDATE {table} SET details = %s, hash = %s WHERE seq = %s",
        [json.dumps(event.details), new_hash, seq],
    )


TAMPERING = {
    "details altered": (alter_details, 4, 4, "altered (its contents no longer match its hash)"),
    "action altered": (alter_action, 1, 1, "altered (its contents no longer match its hash)"),
    "middle row deleted": (delete, 5, 5, "missing (removed from the log)"),
    "prev_hash changed": (change_prev_hash, 3, 3, "does not follow the entry before it"),
    "altered and rehashed": (alter_and_rehash, 6, 7, "does not follow the entry before it"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_verify_names_the_first_broken_entry(world, case):
    tamper, seq, broken, problem = TAMPERING[case]
    build_trail(world)
    tamper(seq)

    found = verify_trail()
    assert found is not None
    assert found.seq == broken
    assert problem in found.problem
    with pytest.raises(CommandError) as error:
        verify_command()
    assert str(error.value).startswith(f"audit trail broken at entry {broken}: ")
    assert problem in str(error.value)


@pytest.mark.django_db
def test_verify_notices_the_last_entry_removed(world):
    total = build_trail(world)
    delete(total)

    with pytest.raises(CommandError) as error:
        verify_command()
    assert str(error.value) == (
        f"audit trail broken at entry {total}: missing (removed; the log's head is at entry "
        f"{total})"
    )


@pytest.mark.django_db
def test_verify_reports_the_earliest_of_several_breaks(world):
    build_trail(world)
    delete(7)
    alter_details(3)
    with pytest.raises(CommandError, match=r"at entry 3: altered"):
        verify_command()


def run_mamori(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "DATABASE_URL": database_url_of_test_db(),
        "MAMORI_VAR_DIR": str(tmp_path / "var"),
    }
    return subprocess.run(
        [str(MAMORI), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.django_db(transaction=True)
def test_mamori_audit_verify_exit_status_as_a_real_command(world, tmp_path):
    total = build_trail(world)

    intact = run_mamori("audit", "verify", tmp_path=tmp_path)
    assert intact.returncode == 0, intact.stderr
    assert intact.stdout.strip() == f"audit trail intact: {total} entries verified"

    alter_details(2)
    broken = run_mamori("audit", "verify", tmp_path=tmp_path)
    assert broken.returncode != 0
    assert "audit trail broken at entry 2: altered" in broken.stderr
    assert broken.stdout == ""

    delete(total)  # a second break further on does not hide the first one
    broken = run_mamori("audit", "verify", tmp_path=tmp_path)
    assert broken.returncode != 0
    assert "entry 2:" in broken.stderr
