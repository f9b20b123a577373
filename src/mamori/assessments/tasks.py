"""Background work for assessments: the advice report PDF after a failed decision, and the
workflow e-mail."""

from __future__ import annotations

import uuid

from django.core.files.base import ContentFile
from django.db import transaction

from mamori.assessments import notifications
from mamori.assessments.models import Assessment, Decision
from mamori.assessments.reports import advice_context
from mamori.celery import app
from mamori.core import outbox
from mamori.core.pdf import render_pdf

REPORT_FIELDS = (("ja", "report_pdf"), ("en", "report_pdf_en"))


@app.task(name="mamori.assessments.tasks.render_advice_pdf")
def render_advice_pdf(decision_id: int) -> None:
    """The advice report of a failed decision, in Japanese and English. Once only: rendered
    outside any lock, stored under the decision's row lock only if it has no report yet."""
    decision = (
        Decision.objects.select_related("assessment__organisation", "assessment__catalogue")
        .filter(pk=decision_id)
        .first()
    )
    if decision is None or all(getattr(decision, field) for _language, field in REPORT_FIELDS):
        return
    rendered = {
        field: render_pdf(
            "assessments/advice_pdf.html", advice_context(decision, language), language
        )
        for language, field in REPORT_FIELDS
    }
    with transaction.atomic():
        current = (
            Decision.objects.select_for_update()
            .filter(pk=decision_id)
            .values(*(field for _language, field in REPORT_FIELDS))
            .first()
        )
        if current is None or all(current.values()):
            return
        names = {}
        for language, field in REPORT_FIELDS:
            file = getattr(decision, field)
            file.save(
                f"advice-{decision.assessment.reference}-r{decision.round}-{language}.pdf",
                ContentFile(rendered[field]),
                save=False,
            )
            names[field] = file.name
        # Should the row not commit, no record names the files and the clean-up removes them.
        Decision.objects.filter(pk=decision.pk).update(**names)


@app.task(name="mamori.assessments.tasks.send_workflow_mail")
def send_workflow_mail(event: str, assessment_id: int, user_id: int, key: str = "") -> None:
    """One workflow message to one user; ``key`` names this message, so running the task
    again does not send it twice (``core.mail.send_once``)."""
    notifications.send(event, assessment_id, user_id, key=key or None)


def mail_after_commit(event: str, assessment: Assessment) -> None:
    """Queue ``event``'s e-mail (``notifications``) in the current transaction: one outbox
    message per recipient, sent once the change commits (a refused or rolled-back change mails
    nobody; a mail server or broker that is away delays the message, never the change)."""
    if event not in notifications.EVENTS:
        raise ValueError(f"unknown workflow event {event!r}")
    for user in notifications.recipients(event, assessment):
        outbox.enqueue(send_workflow_mail, event, assessment.pk, user.pk, uuid.uuid4().hex)
