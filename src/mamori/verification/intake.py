"""An agent's upload in the request: receive and store it (``services.receive_upload``), then
queue its evaluation for a worker once the receipt is committed. Embedded (no broker) the
task runs in-process at the commit, so the answer already says "done"."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from mamori.core import outbox
from mamori.verification import services
from mamori.verification.models import UploadState

EVALUATE_EVIDENCE_UPLOAD = "mamori.verification.tasks.evaluate_evidence_upload"

# A duplicate of an upload still pending after this long queues its evaluation again: the
# agent's retry also retries a task that was lost (the task is idempotent).
REQUEUE_AFTER = dt.timedelta(minutes=1)


def accept(upload: services.AgentUpload) -> services.Receipt:
    with transaction.atomic():
        receipt = services.receive_upload(upload)
        stale = timezone.now() - receipt.upload.received_at > REQUEUE_AFTER
        if receipt.upload.state == UploadState.PENDING and (not receipt.duplicate or stale):
            enqueue_evaluation(receipt.upload.pk)
    receipt.upload.refresh_from_db(fields=["state", "code", "detail", "evidence", "finished_at"])
    return receipt


def enqueue_evaluation(upload_id: int) -> None:
    """Queue the evaluation through the outbox, in the receipt's transaction: the upload is
    stored and acknowledged even when the broker cannot be reached, and the outbox's beat hands
    the evaluation over once it can."""
    outbox.enqueue(EVALUATE_EVIDENCE_UPLOAD, upload_id)
