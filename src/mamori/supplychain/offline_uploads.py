"""Receiving an offline questionnaire in the upload request: the cheap checks of the file
(``offline.check_file``), then the file is stored as an ``OfflineImport`` and its import queued
for a worker (``tasks.import_offline_answers`` → ``offline_import.process_upload``). The request
answers at once; the page polls the upload's state."""

from __future__ import annotations

from django.db import transaction

from mamori.core import outbox
from mamori.supplychain import offline, permissions
from mamori.supplychain.models import Invitation, OfflineImport

IMPORT_OFFLINE_ANSWERS = "mamori.supplychain.tasks.import_offline_answers"


def receive_upload(
    actor,
    invitation: Invitation,
    *,
    file_name: str,
    data: bytes,
    language: str,
    site_url: str,
    link_key: str | None = None,
) -> OfflineImport:
    """Store the file for import. Access is the caller's check
    (``permissions.can_edit_response``). Raises ``OfflineFileError`` for a file refused at once
    (too large, empty, not .xlsx or .csv). ``link_key`` is the uploading browser's key: the
    worker imports the answers as that browser (only its digest is kept)."""
    offline.check_file(file_name, data)
    with transaction.atomic():
        upload = OfflineImport.objects.create(
            invitation=invitation,
            uploaded_by=actor,
            file_name=file_name[-200:],
            content=data,
            language=language[:8],
            site_url=site_url[:200],
            answer_lock=permissions.answer_lock_of(link_key),
        )
        enqueue_import(upload.pk)
    return upload


def enqueue_import(import_id: int) -> None:
    """Queue the import once the upload is committed (in-process on the embedded default)."""
    outbox.enqueue(IMPORT_OFFLINE_ANSWERS, import_id)
