"""Background work for assessments: the advice report PDF after a failed decision, and the
workflow e-mail."""

from __future__ import annotations

import logging
from smtplib import SMTPException

from django.core.files.base import ContentFile
from django.db import transaction

from mamori.assessments import notifications
from mamori.assessments.models import Assessment, Decision
from mamori.assessments.reports import advice_context
from mamori.celery import app
from mamori.core.pdf import render_pdf


@app.task(name="mamori.assessments.tasks.render_advice_pdf")
def render_advice_pdf(decision_id: int) -> None:
    decision = Decision.objects.select_related(
        "assessment__organisation", "assessment__catalogue"
    ).get(pk=decision_id)
    names = {}
    for language, field in (("ja", "report_pdf"), ("en", "report_pdf_en")):
        pdf = render_pdf(
            "assessments/advice_pdf.html", advice_context(decision, language), language
        )
        file = getattr(decision, field)
        file.save(
            f"advice-{decision.assessment.reference}-r{decision.round}-{language}.pdf",
            ContentFile(pdf),
            save=False,
        )
        names[field] = file.name
    Decision.objects.filter(pk=decision.pk).update(**names)


@app.task(
    name="mamori.assessments.tasks.send_workflow_mail",
    # A mail server that is down or refuses for a while: try again later, for about a day.
    autoretry_for=(OSError, SMTPException),
    retry_backoff=60,
    retry_backoff_max=3600,
    max_retries=30,
)
def send_workflow_mail(event: str, assessment_id: int, user_id: int) -> None:
    notifications.send(event, assessment_id, user_id)


log = logging.getLogger(__name__)


def mail_after_commit(event: str, assessment: Assessment) -> None:
    """Send ``event``'s e-mail (``notifications``) once the current transaction commits."""
    if event not in notifications.EVENTS:
        raise ValueError(f"unknown workflow event {event!r}")
    assessment_id = assessment.pk
    # robust: the change is committed by then; a failure to queue the mail is logged, and the
    # person who made the change still gets their answer.
    transaction.on_commit(lambda: _queue_mail(event, assessment_id), robust=True)


def _queue_mail(event: str, assessment_id: int) -> None:
    assessment = Assessment.objects.select_related("assessor").get(pk=assessment_id)
    for user in notifications.recipients(event, assessment):
        try:
            send_workflow_mail.delay(event, assessment_id, user.pk)
        except Exception:
            # Only in-process (eager) tasks fail here, where there is no worker to retry: the
            # others still get their message, and the failure is in the log.
            log.exception(
                "workflow mail %s for assessment %s to user %s failed",
                event,
                assessment_id,
                user.pk,
            )
