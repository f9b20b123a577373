"""Background work for assessments: the advice report PDF after a failed decision, and the
workflow e-mail."""

from __future__ import annotations

from smtplib import SMTPException

from django.core.files.base import ContentFile

from mamori.assessments import notifications
from mamori.assessments.models import Decision
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
