"""Background work for the supplier survey: invitation e-mail, reminders for overdue
invitations, and importing uploaded offline questionnaires."""

from __future__ import annotations

import logging

from mamori.celery import app
from mamori.supplychain import services
from mamori.supplychain.offline_import import process_upload

log = logging.getLogger(__name__)


@app.task(name="mamori.supplychain.tasks.send_invitation_reminders")
def send_invitation_reminders() -> int:
    """Queue reminders for suppliers whose answers are overdue; at most once per invitation per
    window (a second run in the window queues nothing)."""
    queued = services.send_due_reminders()
    if queued:
        log.info("supplier survey reminders queued: %s", queued)
    return queued


@app.task(name=services.SEND_INVITATION_MAIL)
def send_invitation_mail(
    invitation_id: int,
    key: str,
    site_url: str,
    inviter: str,
    language: str,
    reminder: bool = False,
) -> bool:
    """One invitation or reminder e-mail, sent once however often the task runs."""
    return services.send_invitation_mail(
        invitation_id, key, site_url, inviter, language, reminder=reminder
    )


@app.task(name="mamori.supplychain.tasks.import_offline_answers")
def import_offline_answers(import_id: int) -> str:
    """Parse and import one uploaded offline questionnaire; running it again changes nothing."""
    return process_upload(import_id)
