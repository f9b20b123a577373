"""Workflow e-mail, read from Django's outbox: who hears of a submission, a clarification request,
the applicant's reply and a decision; in the recipient's language, as plain text, with an
absolute link into Mamori; sent only once the change is committed."""

from __future__ import annotations

import json
import logging
import socket

import pytest
from django.db.models import F
from django.urls import reverse
from django.utils import formats, translation

from mamori.assessments import services, tasks
from mamori.assessments.models import Assessment, ClarificationReply, Outcome, State, Verdict
from mamori.audit.models import AuditEvent
from mamori.core.errors import WrongState
from mamori.core.models import OutboxMessage, OutboxState
from tests.conftest import api_token, client_for

pytestmark = pytest.mark.django_db

SITE = "https://mamori.example.jp"


@pytest.fixture(autouse=True)
def _site(settings):
    settings.SITE_URL = SITE


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    """Run the callbacks a block registers, as the real commit would."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def sent_to(mailoutbox) -> dict[str, object]:
    by_recipient = {}
    for message in mailoutbox:
        (recipient,) = message.to
        assert recipient not in by_recipient, f"{recipient} got two messages"
        by_recipient[recipient] = message
    return by_recipient


def assert_plain(message) -> None:
    assert message.content_subtype == "plain"
    assert not getattr(message, "alternatives", None)
    assert "<" not in message.body, "the text is not HTML-escaped or HTML"


def ready_to_submit(world):
    assessment = world.start()
    world.answer_all(assessment)
    world.sign(assessment)
    return assessment


def in_clarification(world, commit):
    assessment = world.submitted()
    access = world.access(world.assessor)
    services.mark_answer(
        world.assessor, access, assessment.pk, "A4.2", Verdict.NEEDS_INFORMATION, "Which firewall?"
    )
    with commit():
        services.request_clarification(world.assessor, access, assessment.pk)
    assessment.refresh_from_db()
    return assessment


def test_submission_mails_the_assigned_assessor_in_their_language(world, commit, mailoutbox):
    world.assessor.language = "en"
    world.assessor.save(update_fields=["language"])
    world.assessor2.is_active = False  # the assessor with the fewest open reviews is ada
    world.assessor2.save(update_fields=["is_active"])
    assessment = ready_to_submit(world)
    with commit():
        services.submit(world.admin, world.access(world.admin), assessment.pk)
    assessment.refresh_from_db()
    assert assessment.assessor == world.assessor

    mail = sent_to(mailoutbox)
    assert set(mail) == {world.assessor.email}
    message = mail[world.assessor.email]
    assert_plain(message)
    assert message.subject == f"Submitted for review: {assessment.reference} (Test Bank)"
    assert message.body.startswith(f"Dear {world.assessor},")
    assert "It is assigned to you." in message.body
    assert f"{SITE}/assessments/{assessment.pk}/review/" in message.body.split()


def test_nothing_is_sent_for_a_refused_or_rolled_back_change(world, commit, mailoutbox):
    draft = world.start()  # unanswered: submission is refused
    with commit() as callbacks, pytest.raises(WrongState):
        services.submit(world.admin, world.access(world.admin), draft.pk)
    assert callbacks == []
    assert mailoutbox == []


def test_clarification_request_tells_those_who_can_update_with_the_deadline(
    world, commit, mailoutbox
):
    world.contributor.language = "en"
    world.contributor.save(update_fields=["language"])
    assessment = in_clarification(world, commit)
    assert assessment.state == State.CLARIFICATION

    mail = sent_to(mailoutbox)
    # Administrators and contributors update answers; the signatory and assessors are not told.
    assert set(mail) == {world.admin.email, world.contributor.email}
    link = f"{SITE}/assessments/{assessment.pk}/"
    for user, language in ((world.admin, "ja"), (world.contributor, "en")):
        message = mail[user.email]
        assert_plain(message)
        assert link in message.body.split()
        assert "A4.2" in message.body
        assert "Which firewall?" in message.body
        with translation.override(language):
            due = formats.date_format(assessment.feedback_due)
        assert due in message.body, f"{language}: no deadline {due!r} in\n{message.body}"
    assert mail[world.admin.email].subject.startswith("追加情報の依頼")
    assert mail[world.contributor.email].subject == (
        f"More information needed: {assessment.reference} (Test Bank)"
    )


def test_reply_with_a_message_reaches_the_assessor_and_the_pages(world, commit, mailoutbox):
    assessment = in_clarification(world, commit)
    mailoutbox.clear()
    text = "A4.2: 境界ファイアウォールは FortiGate 60F です。設定画面の写しを証跡に追加しました。"
    with commit():
        response = client_for(world.admin).post(
            reverse("assessments:respond", args=[assessment.pk]), {"message": f"  {text}\n"}
        )
    assert response.status_code == 302
    assessment.refresh_from_db()
    assert assessment.state == State.IN_REVIEW
    reply = ClarificationReply.objects.get(assessment=assessment)
    assert (reply.message, reply.author, reply.round) == (text, world.admin, 1)
    event = AuditEvent.objects.get(action="assessment.clarified", object_id=str(assessment.pk))
    assert event.details["reply"] == reply.pk
    assert event.details["message_digest"]

    mail = sent_to(mailoutbox)
    assert set(mail) == {world.assessor.email}
    message = mail[world.assessor.email]
    assert_plain(message)
    assert text in message.body
    assert f"{SITE}/assessments/{assessment.pk}/review/" in message.body.split()

    # Both sides read it on the assessment's page, and the assessor on the review page too.
    for user in (world.admin, world.assessor):
        page = client_for(user).get(reverse("assessments:detail", args=[assessment.pk]))
        assert page.status_code == 200
        assert text in page.content.decode()
    review = client_for(world.assessor).get(reverse("assessments:review", args=[assessment.pk]))
    assert 'id="clarification-replies"' in review.content.decode()
    assert text in review.content.decode()


def test_reply_without_a_message_and_through_the_api(world, commit, mailoutbox):
    assessment = in_clarification(world, commit)
    mailoutbox.clear()
    client = client_for(world.admin)
    client.defaults["HTTP_AUTHORIZATION"] = f"Token {api_token(world.admin, world.bank)}"
    with commit():
        response = client.post(
            f"/api/assessments/{assessment.pk}/respond/",
            {"message": "MFA is on for every admin account now."},
            content_type="application/json",
        )
    assert response.status_code == 200, response.content
    assert response.json()["state"] == State.IN_REVIEW
    assert ClarificationReply.objects.get(assessment=assessment).message == (
        "MFA is on for every admin account now."
    )
    assert "MFA is on for every admin account now." in mailoutbox[0].body


def test_a_too_long_reply_is_refused_with_a_reason_and_changes_nothing(world, commit, mailoutbox):
    assessment = in_clarification(world, commit)
    mailoutbox.clear()
    client = client_for(world.admin)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    with commit():
        response = client.post(
            reverse("assessments:respond", args=[assessment.pk]),
            {"message": "x" * 4001},
            follow=True,
        )
    assert response.status_code == 200
    assert "Ensure this value has at most 4000 characters" in response.content.decode()
    assessment.refresh_from_db()
    assert assessment.state == State.CLARIFICATION
    assert not ClarificationReply.objects.exists()
    assert mailoutbox == []


def test_decisions_tell_the_applicant_what_comes_next(world, commit, mailoutbox):
    world.signatory.language = "en"
    world.signatory.save(update_fields=["language"])
    failed = world.mark_all(world.submitted(failing={"A6.4"}))
    with commit():
        services.decide(
            world.assessor, world.access(world.assessor), failed.pk, Outcome.FAIL, "Patch A6.4."
        )
    failed.refresh_from_db()
    mail = sent_to(mailoutbox)
    # Administrators and board signatories, as for certificate reminders.
    assert set(mail) == {world.admin.email, world.signatory.email}
    message = mail[world.signatory.email]
    assert_plain(message)
    assert message.subject == f"Not passed: {failed.reference} (Test Bank)"
    assert "Patch A6.4." in message.body
    with translation.override("en"):
        due = formats.date_format(failed.feedback_due)
    assert f"resubmit once, by {due}" in message.body
    assert f"{SITE}/assessments/{failed.pk}/advice/1/" in message.body.split()

    mailoutbox.clear()
    passed = world.mark_all(world.submitted(organisation=world.other_bank, admin=world.other_admin))
    with commit():
        services.decide(
            world.assessor, world.access(world.assessor), passed.pk, Outcome.PASS, "Well done."
        )
    passed.refresh_from_db()
    certificate = passed.certificate
    mail = sent_to(mailoutbox)
    assert world.other_admin.email in mail
    message = mail[world.other_admin.email]
    assert message.subject.startswith("合格")
    assert certificate.number in message.body
    assert f"{SITE}/assessments/{passed.pk}/" in message.body.split()


def test_a_mail_server_that_is_down_does_not_fail_the_request(world, commit, settings, caplog):
    """The submission is committed and answered; the failed delivery is logged and stays in the
    outbox for the worker's beat (tests/core/test_mail_delivery.py sends it once the server
    is back)."""
    with socket.socket() as probe:  # a port on which nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 2
    assessment = ready_to_submit(world)
    with caplog.at_level(logging.ERROR, logger="mamori.core.outbox"), commit():
        response = client_for(world.admin).post(reverse("assessments:submit", args=[assessment.pk]))
    assert response.status_code == 302
    assessment.refresh_from_db()
    assert assessment.state == State.SUBMITTED
    assert any(
        "send_workflow_mail) failed in-process" in record.getMessage() for record in caplog.records
    )
    (pending,) = OutboxMessage.objects.filter(task=tasks.send_workflow_mail.name)
    assert pending.state == OutboxState.PENDING
    assert "Connection refused" in pending.last_error


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("x" * 4001, "Ensure this field has no more than 4000 characters."),
        ("\x1b[31mred\x1b[0m", "The message contains control characters; remove them."),
    ],
    ids=["too-long", "escape-codes"],
)
def test_a_bad_reply_through_the_api_is_refused_with_a_reason(
    world, commit, mailoutbox, message, reason
):
    assessment = in_clarification(world, commit)
    mailoutbox.clear()
    client = client_for(world.admin)
    client.defaults["HTTP_AUTHORIZATION"] = f"Token {api_token(world.admin, world.bank)}"
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    with commit():
        response = client.post(
            f"/api/assessments/{assessment.pk}/respond/",
            {"message": message},
            content_type="application/json",
        )
    assert response.status_code == 400, response.content
    body = response.json()
    assert reason in json.dumps(body), body
    assessment.refresh_from_db()
    assert assessment.state == State.CLARIFICATION
    assert not ClarificationReply.objects.exists()
    assert mailoutbox == []


def test_a_decision_mail_sent_after_the_resubmission_tells_that_decision(
    world, django_capture_on_commit_callbacks, mailoutbox
):
    """The outbox may send the decision's mail late, when the applicant has already resubmitted
    (the demo does all in one transaction): the message is about the decision of the earlier
    round, not a failure to find one of the current round."""
    failed = world.mark_all(world.submitted(failing={"A6.4"}))
    with django_capture_on_commit_callbacks() as callbacks:
        services.decide(
            world.assessor, world.access(world.assessor), failed.pk, Outcome.FAIL, "Patch A6.4."
        )
    Assessment.objects.filter(pk=failed.pk).update(round=F("round") + 1)
    for callback in callbacks:
        callback()
    message = sent_to(mailoutbox)[world.admin.email]
    assert "Patch A6.4." in message.body
    assert f"{SITE}/assessments/{failed.pk}/advice/1/" in message.body.split()
    # No run of the queued mail failed (before, each decision mail failed and waited to retry).
    assert not OutboxMessage.objects.exclude(last_error="").exists()
