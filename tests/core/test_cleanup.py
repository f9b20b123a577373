"""Periodic clean-up (core/cleanup.py; daily on the beat and ``mamori cleanup``): expired sessions,
old login-attempt records, delivered outbox rows and mail receipts past retention, and orphaned
files in the private file store, only once older than the grace period."""

from __future__ import annotations

import datetime as dt
import io
import os
import time
from pathlib import Path

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from mamori.celery import app
from mamori.certificates.tasks import render_certificate_pdf
from mamori.core import cleanup
from mamori.core.models import MailReceipt, OutboxMessage, OutboxState
from tests.certificates import certificate_expiring, days_from_today
from tests.conftest import PASSWORD, make_user

pytestmark = pytest.mark.django_db

DAY = dt.timedelta(days=1)


@pytest.fixture
def file_store(settings, tmp_path) -> Path:
    root = tmp_path / "files"
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": root, "base_url": None},
        },
    }
    return root


def session(expires_in: dt.timedelta) -> str:
    store = SessionStore()
    store["user"] = "x"
    store.create()
    Session.objects.filter(session_key=store.session_key).update(
        expire_date=timezone.now() + expires_in
    )
    return store.session_key


def test_expired_sessions_go_live_ones_stay():
    expired = session(-dt.timedelta(seconds=1))
    live = session(dt.timedelta(minutes=30))
    assert cleanup.expired_sessions(timezone.now()) == 1
    assert list(Session.objects.values_list("session_key", flat=True)) == [live]
    assert expired != live


def log_in(username: str, password: str) -> None:
    """Through the real login page, so django-axes writes its records as in production."""
    Client().post(reverse("accounts:login"), {"username": username, "password": password})


def test_login_records_past_the_retention_go(settings):
    settings.LOGIN_RECORDS_RETENTION_DAYS = 90
    make_user("old", password=PASSWORD)
    make_user("recent", password=PASSWORD)
    now = timezone.now()
    for username, age in (("old", 91), ("recent", 89)):
        log_in(username, "wrong password")
        log_in(username, PASSWORD)
        for model in (AccessAttempt, AccessFailureLog, AccessLog):
            model.objects.filter(username=username).update(attempt_time=now - age * DAY)
    counts = {m: m.objects.filter(username="old").count() for m in (AccessLog, AccessFailureLog)}
    assert counts[AccessLog] == 1  # the successful login
    old_rows = sum(counts.values()) + AccessAttempt.objects.filter(username="old").count()
    assert cleanup.old_login_records(now) == old_rows
    for model in (AccessAttempt, AccessFailureLog, AccessLog):
        assert not model.objects.filter(username="old").exists()
    assert AccessLog.objects.filter(username="recent").exists()


def test_a_lockout_is_never_cleaned_up_whatever_the_retention(settings):
    """The lockout lives in these rows: a retention shorter than the cool-off keeps them."""
    settings.LOGIN_RECORDS_RETENTION_DAYS = 1
    settings.AXES_COOLOFF_TIME = dt.timedelta(days=3)
    now = timezone.now()
    log_in("locked", "wrong password")
    AccessAttempt.objects.filter(username="locked").update(attempt_time=now - 2 * DAY)
    assert cleanup.old_login_records(now) == 0
    assert AccessAttempt.objects.filter(username="locked").exists()


def test_only_delivered_outbox_rows_and_accepted_receipts_past_retention_go(settings):
    settings.OUTBOX_RETENTION_DAYS = 7
    now = timezone.now()

    def message(state, done_days_ago):
        return OutboxMessage.objects.create(
            task=render_certificate_pdf.name,
            args=[1],
            state=state,
            done_at=now - done_days_ago * DAY if done_days_ago is not None else None,
        )

    old_done = message(OutboxState.DONE, 8)
    recent_done = message(OutboxState.DONE, 6)
    old_pending = message(OutboxState.PENDING, None)
    OutboxMessage.objects.filter(pk=old_pending.pk).update(created_at=now - 30 * DAY)
    given_up = message(OutboxState.FAILED, None)
    MailReceipt.objects.create(key="old", recipient="a@example.jp", accepted_at=now - 8 * DAY)
    MailReceipt.objects.create(key="recent", recipient="a@example.jp", accepted_at=now - DAY)
    MailReceipt.objects.create(key="unsent", recipient="a@example.jp")

    assert cleanup.delivered_outbox_messages(now) == 1
    assert cleanup.accepted_mail_receipts(now) == 1
    assert set(OutboxMessage.objects.values_list("pk", flat=True)) == {
        recent_done.pk,
        old_pending.pk,
        given_up.pk,
    }
    assert old_done.pk not in set(OutboxMessage.objects.values_list("pk", flat=True))
    assert set(MailReceipt.objects.values_list("key", flat=True)) == {"recent", "unsent"}


def write(root: Path, name: str, *, hours_old: float) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"%PDF-1.7 test")
    stamp = time.time() - hours_old * 3600
    os.utime(path, (stamp, stamp))
    return path


def test_orphaned_files_older_than_the_grace_period_go(world, file_store, settings):
    settings.ORPHAN_FILE_GRACE_HOURS = 24
    certificate = certificate_expiring(world, world.bank, days_from_today(300))
    render_certificate_pdf(certificate.pk)
    certificate.refresh_from_db()
    referenced = file_store / certificate.pdf.name
    stamp = time.time() - 48 * 3600
    os.utime(referenced, (stamp, stamp))
    orphan = write(file_store, "reports/advice-replaced.pdf", hours_old=25)
    nested = write(file_store, "evidence/2026/11/left-behind.xlsx", hours_old=200)
    being_written = write(file_store, "reports/advice-new.pdf", hours_old=0.1)
    elsewhere = write(file_store.parent, "outside.txt", hours_old=500)
    (file_store / "link.pdf").symlink_to(elsewhere)

    removed = cleanup.orphaned_files(timezone.now())

    assert removed == ["evidence/2026/11/left-behind.xlsx", "reports/advice-replaced.pdf"]
    assert not orphan.exists()
    assert not nested.exists()
    assert referenced.is_file()  # a record names it
    assert being_written.is_file()  # within the grace period
    assert elsewhere.is_file()
    assert (file_store / "link.pdf").is_symlink()  # links are not followed nor removed


def test_mamori_cleanup_prints_what_it_removed(world, file_store, settings):
    settings.ORPHAN_FILE_GRACE_HOURS = 1
    session(-dt.timedelta(hours=1))
    write(file_store, "certificates/CE-2026-GONE.pdf", hours_old=2)
    out = io.StringIO()
    call_command("cleanup", stdout=out)
    assert out.getvalue().splitlines() == [
        "expired sessions: 1",
        "login-attempt records older than 90 days: 0",
        "delivered outbox messages older than 7 days: 0",
        "accepted mail receipts older than 7 days: 0",
        "orphaned files older than 1 hours: 1",
        "  certificates/CE-2026-GONE.pdf",
    ]
    out = io.StringIO()
    call_command("cleanup", stdout=out)
    assert "expired sessions: 0" in out.getvalue()
    assert "orphaned files older than 1 hours: 0" in out.getvalue()


def test_the_beat_runs_the_clean_up_daily_and_the_outbox_often():
    schedule = app.conf.beat_schedule
    assert schedule["clean-up"] == {"task": "mamori.core.tasks.clean_up", "schedule": 86400.0}
    assert schedule["outbox-delivery"]["task"] == "mamori.core.tasks.deliver_outbox"
