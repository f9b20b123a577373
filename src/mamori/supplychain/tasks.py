"""Background work for the supplier survey: reminders for overdue invitations, and importing
uploaded offline questionnaires."""

from __future__ import annotations

import logging

from mamori.celery import app
from mamori.supplychain.offline_import import process_upload
from mamori.supplychain.services import send_due_reminders

log = logging.getLogger(__name__)


@app.task(name="mamori.supplychain.tasks.send_invitation_reminders")
def send_invitation_reminders() -> int:
    """Remind suppliers whose answers are overdue; at most once per invitation per window."""
    sent = send_due_reminders()
    if sent:
        log.info("supplier survey reminders sent: %s", sent)
    return sent


@app.task(name="mamori.supplychain.tasks.import_offline_answers")
def import_offline_answers(import_id: int) -> str:
    """Parse and import one uploaded offline questionnaire; running it again changes nothing."""
    return process_upload(import_id)
