"""Periodic clean-up (daily on the beat, and ``mamori cleanup``): expired sessions, old login-attempt
records, delivered outbox rows and accepted mail receipts past their retention, and files in the
private file store that no record refers to.

An orphaned file is removed only once it is older than ``MAMORI_ORPHAN_FILE_GRACE_HOURS``: a
request writes its file before the row that names it commits, and such a file must survive
until then. Every file the platform keeps under ``MAMORI_FILES_DIR`` is named by a ``FileField``
(evidence, PDFs, attachments); anything else there is removed after the grace period.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.contrib.sessions.models import Session
from django.core.files.storage import default_storage
from django.db import models
from django.utils import timezone

from mamori.core.models import MailReceipt, OutboxMessage, OutboxState

log = logging.getLogger(__name__)


@dataclass
class Report:
    sessions: int = 0
    login_records: int = 0
    outbox_messages: int = 0
    mail_receipts: int = 0
    orphaned_files: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "sessions": self.sessions,
            "login_records": self.login_records,
            "outbox_messages": self.outbox_messages,
            "mail_receipts": self.mail_receipts,
            "orphaned_files": len(self.orphaned_files),
        }

    def summary(self) -> str:
        return ", ".join(f"{name} {count}" for name, count in self.counts().items())


def run(now: dt.datetime | None = None) -> Report:
    now = now or timezone.now()
    return Report(
        sessions=expired_sessions(now),
        login_records=old_login_records(now),
        outbox_messages=delivered_outbox_messages(now),
        mail_receipts=accepted_mail_receipts(now),
        orphaned_files=orphaned_files(now),
    )


def expired_sessions(now: dt.datetime) -> int:
    deleted, _by_model = Session.objects.filter(expire_date__lt=now).delete()
    return deleted


def old_login_records(now: dt.datetime) -> int:
    """django-axes' records of login attempts, failures and logins, past the retention (never
    within the lockout's cool-off, whatever the retention says: those rows are the lockout)."""
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    keep = max(
        dt.timedelta(days=settings.LOGIN_RECORDS_RETENTION_DAYS),
        getattr(settings, "AXES_COOLOFF_TIME", None) or dt.timedelta(0),
    )
    cutoff = now - keep
    deleted = 0
    for model in (AccessAttempt, AccessFailureLog, AccessLog):
        count, _by_model = model.objects.filter(attempt_time__lt=cutoff).delete()
        deleted += count
    return deleted


def delivered_outbox_messages(now: dt.datetime) -> int:
    cutoff = now - dt.timedelta(days=settings.OUTBOX_RETENTION_DAYS)
    deleted, _by_model = OutboxMessage.objects.filter(
        state=OutboxState.DONE, done_at__lt=cutoff
    ).delete()
    return deleted


def accepted_mail_receipts(now: dt.datetime) -> int:
    """A receipt guards against sending a message twice while its task may still run again:
    once its outbox row is gone (same retention), nothing runs it again."""
    cutoff = now - dt.timedelta(days=settings.OUTBOX_RETENTION_DAYS)
    deleted, _by_model = MailReceipt.objects.filter(accepted_at__lt=cutoff).delete()
    return deleted


def referenced_files() -> set[str]:
    """Every name a ``FileField`` on the private store holds, across all models."""
    names: set[str] = set()
    for model in apps.get_models():
        for model_field in model._meta.get_fields():
            if not isinstance(model_field, models.FileField) or model_field.model is not model:
                continue
            if getattr(model_field.storage, "location", None) != default_storage.location:
                continue
            names.update(
                model._default_manager.exclude(**{model_field.attname: ""})
                .exclude(**{f"{model_field.attname}__isnull": True})
                .values_list(model_field.attname, flat=True)
                .iterator()
            )
    return names


def orphaned_files(now: dt.datetime) -> list[str]:
    """Remove the files of the private store that no record names and that are older than the
    grace period; returns their names, relative to the store."""
    root = Path(default_storage.location)
    if not root.is_dir():
        return []
    # Listed before the names are read: a file whose row commits in between is then named.
    candidates = []
    cutoff = (now - dt.timedelta(hours=settings.ORPHAN_FILE_GRACE_HOURS)).timestamp()
    for folder, _dirs, files in os.walk(root, followlinks=False):
        for filename in files:
            path = Path(folder) / filename
            try:
                stat = path.lstat()
            except FileNotFoundError:
                continue
            if path.is_symlink() or stat.st_mtime >= cutoff:
                continue
            candidates.append(path)
    if not candidates:
        return []
    referenced = referenced_files()
    removed = []
    for path in candidates:
        name = path.relative_to(root).as_posix()
        if name in referenced:
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        removed.append(name)
        log.info("removed orphaned file %s", name)
    return sorted(removed)
