"""Every task has the effect of running once however often it runs: delivery is at least once (a
message redelivered after a worker died, an outbox row published again, a retry after a partial
failure). Each task is run twice here and the effect compared with one run; a new task without
such a test fails ``test_every_task_is_run_twice_somewhere``."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.utils import timezone

from mamori.assessments.tasks import render_advice_pdf, send_workflow_mail
from mamori.audit.models import AuditEvent
from mamori.celery import app
from mamori.certificates.models import Reminder
from mamori.certificates.tasks import (
    render_certificate_pdf,
    send_expiry_reminder,
    send_expiry_reminders,
)
from mamori.core.models import Heartbeat, OutboxMessage
from mamori.core.tasks import clean_up, deliver_outbox, heartbeat
from mamori.organisations.access import Access
from mamori.supplychain import services as supply_services
from mamori.supplychain import tasks as supply_tasks
from mamori.supplychain.models import Invitation
from tests.certificates import certificate_expiring, days_from_today

pytestmark = pytest.mark.django_db

# Task name → the test that runs it twice (the re-match's is with its fleet fixture).
RUN_TWICE = {
    "mamori.certificates.tasks.render_certificate_pdf": "test_certificate_pdf_twice",
    "mamori.assessments.tasks.render_advice_pdf": "test_advice_pdf_twice",
    "mamori.assessments.tasks.send_workflow_mail": "test_workflow_mail_twice",
    "mamori.certificates.tasks.send_expiry_reminders": "test_expiry_reminders_twice",
    "mamori.certificates.tasks.send_expiry_reminder": "test_expiry_reminders_twice",
    "mamori.supplychain.tasks.send_invitation_reminders": "test_invitation_mail_twice",
    "mamori.supplychain.tasks.send_invitation_mail": "test_invitation_mail_twice",
    "mamori.core.tasks.deliver_outbox": "test_outbox_delivery_twice",
    "mamori.core.tasks.clean_up": "test_clean_up_twice",
    "mamori.core.tasks.heartbeat": "test_heartbeat_twice",
    "mamori.supplychain.tasks.import_offline_answers": (
        "tests/supplychain/test_offline_hostile.py::test_running_the_import_twice_imports_once"
    ),
    "mamori.verification.tasks.evaluate_evidence_upload": (
        "tests/verification/test_upload_async.py::test_evaluating_twice_stores_once"
    ),
    "mamori.verification.tasks.rematch_advisories": (
        "tests/verification/test_rematch.py::test_the_rematch_task_twice_has_the_effect_of_once"
    ),
    "mamori.earlywarning.tasks.send_alert_mail": (
        "tests/earlywarning/test_notify_mail.py::test_the_digest_beat_and_the_mail_tasks_twice_send_once"
    ),
    "mamori.earlywarning.tasks.send_daily_digests": (
        "tests/earlywarning/test_notify_mail.py::test_the_digest_beat_and_the_mail_tasks_twice_send_once"
    ),
    "mamori.earlywarning.tasks.send_digest": (
        "tests/earlywarning/test_notify_mail.py::test_the_digest_beat_and_the_mail_tasks_twice_send_once"
    ),
    "mamori.earlywarning.tasks.deliver_webhooks": (
        "tests/earlywarning/test_webhook_delivery.py::test_the_delivery_tasks_twice_deliver_once"
    ),
    "mamori.earlywarning.tasks.retry_webhook_deliveries": (
        "tests/earlywarning/test_webhook_delivery.py::test_the_delivery_tasks_twice_deliver_once"
    ),
    "mamori.earlywarning.tasks.send_webhook_disabled_notice": (
        "tests/earlywarning/test_webhook_delivery.py::test_the_disabled_notice_twice_is_sent_once"
    ),
    "mamori.earlywarning.tasks.raise_host_software_alerts": (
        "tests/earlywarning/test_software_feeds.py::"
        "test_an_upload_that_reports_a_kev_listed_package_raises_its_alert_without_an_import"
    ),
    "mamori.earlywarning.tasks.sweep_software_deadlines": (
        "tests/earlywarning/test_software_feeds.py::"
        "test_a_finding_that_goes_over_the_deadline_later_is_raised_on_the_day_it_crosses"
    ),
    "mamori.earlywarning.tasks.read_feed": (
        "tests/earlywarning/test_software_feeds.py::"
        "test_the_beat_reads_each_due_feed_from_its_location_once"
    ),
    "mamori.earlywarning.tasks.read_due_feeds": (
        "tests/earlywarning/test_software_feeds.py::"
        "test_the_beat_reads_each_due_feed_from_its_location_once"
    ),
    "mamori.earlywarning.tasks.raise_software_alerts": (
        "tests/earlywarning/test_software_feeds.py::test_raising_twice_has_the_effect_of_once"
    ),
    "mamori.earlywarning.tasks.sample_sector": (
        "tests/earlywarning/test_notify_pages.py::"
        "test_sampling_the_sector_twice_stores_each_finished_day_once"
    ),
    "mamori.reporting.tasks.quarterly_packs": (
        "tests/reporting/test_packs.py::"
        "test_the_quarterly_pack_is_made_once_and_its_owner_reminded_after_30_days"
    ),
    "mamori.reporting.tasks.send_pack_reminder": (
        "tests/reporting/test_packs.py::"
        "test_the_quarterly_pack_is_made_once_and_its_owner_reminded_after_30_days"
    ),
    "mamori.reporting.tasks.render_pack": (
        "tests/reporting/test_packs.py::"
        "test_a_pack_is_made_from_the_samples_rendered_by_the_worker_and_downloaded"
    ),
    "mamori.reporting.tasks.sample_days": (
        "tests/reporting/test_samples.py::test_the_nightly_run_catches_up_the_days_the_beat_missed"
    ),
}


def test_every_task_is_run_twice_somewhere():
    app.loader.import_default_modules()
    ours = {name for name in app.tasks if name.startswith("mamori.")}
    assert ours == set(RUN_TWICE)
    here = globals()
    for test in RUN_TWICE.values():
        assert "::" in test or test in here, test


@pytest.fixture
def file_store(settings, tmp_path) -> Path:
    """A private file store of the test's own, so what is counted there is this test's."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path, "base_url": None},
        },
    }
    return tmp_path


def stored(root: Path, folder: str) -> list[str]:
    return sorted(path.name for path in (root / folder).iterdir())


def test_certificate_pdf_twice(world, file_store):
    certificate = certificate_expiring(world, world.bank, days_from_today(300))
    render_certificate_pdf(certificate.pk)
    certificate.refresh_from_db()
    name = certificate.pdf.name
    render_certificate_pdf(certificate.pk)
    certificate.refresh_from_db()
    assert certificate.pdf.name == name
    assert stored(file_store, "certificates") == [f"{certificate.number}.pdf"]


def test_advice_pdf_twice(world, file_store):
    assessment = world.failed()
    decision = assessment.decisions.get()
    render_advice_pdf(decision.pk)
    decision.refresh_from_db()
    names = (decision.report_pdf.name, decision.report_pdf_en.name)
    render_advice_pdf(decision.pk)
    decision.refresh_from_db()
    assert (decision.report_pdf.name, decision.report_pdf_en.name) == names
    assert stored(file_store, "reports") == sorted(Path(name).name for name in names)


def test_workflow_mail_twice(world, mailoutbox):
    assessment = world.submitted()
    mailoutbox.clear()
    send_workflow_mail("submitted", assessment.pk, world.assessor.pk, "k1")
    send_workflow_mail("submitted", assessment.pk, world.assessor.pk, "k1")
    assert [message.to for message in mailoutbox] == [[world.assessor.email]]


def test_expiry_reminders_twice(world, mailoutbox):
    certificate_expiring(world, world.bank, days_from_today(30))
    assert send_expiry_reminders() == 1
    assert send_expiry_reminders() == 0
    reminder = Reminder.objects.get()
    assert send_expiry_reminder(reminder.pk) == 2
    assert send_expiry_reminder(reminder.pk) == 0
    assert len(mailoutbox) == 2
    assert AuditEvent.objects.filter(action="certificate.reminder_sent").count() == 1


def test_invitation_mail_twice(world, mailoutbox, django_capture_on_commit_callbacks):
    from tests.core.test_mail_delivery import _campaign

    campaign, service = _campaign(world)
    sent = supply_services.invite(
        world.admin,
        Access.for_user(world.admin),
        campaign=campaign,
        for_node=service,
        need="network",
        supplier_name="Carrier N",
        country="JP",
        email="n@example.jp",
        site_url="http://testserver/",
    )
    (invitation_mail,) = OutboxMessage.objects.filter(task=supply_tasks.send_invitation_mail.name)
    assert supply_tasks.send_invitation_mail(*invitation_mail.args) is True
    assert supply_tasks.send_invitation_mail(*invitation_mail.args) is False
    Invitation.objects.filter(pk=sent.invitation.pk).update(
        due_on=timezone.localdate() - dt.timedelta(days=1)
    )
    assert supply_tasks.send_invitation_reminders() == 1
    assert supply_tasks.send_invitation_reminders() == 0
    reminder = OutboxMessage.objects.filter(task=supply_tasks.send_invitation_mail.name).last()
    assert supply_tasks.send_invitation_mail(*reminder.args, **reminder.kwargs) is True
    assert supply_tasks.send_invitation_mail(*reminder.args, **reminder.kwargs) is False
    assert [message.to for message in mailoutbox] == [["n@example.jp"]] * 2
    assert AuditEvent.objects.filter(action="supplychain.invitation_reminded").count() == 1


def test_outbox_delivery_twice(world, monkeypatch):
    ran = []
    monkeypatch.setattr(render_certificate_pdf, "run", lambda pk: ran.append(pk))
    for pk in (1, 2):
        OutboxMessage.objects.create(
            task=render_certificate_pdf.name, args=[pk], due_at=timezone.now()
        )
    assert deliver_outbox() == 2
    assert deliver_outbox() == 0
    assert ran == [1, 2]


def test_clean_up_twice(world):
    session = SessionStore()
    session["x"] = 1
    session.create()
    SessionStore().model.objects.filter(session_key=session.session_key).update(
        expire_date=timezone.now() - dt.timedelta(seconds=1)
    )
    first = clean_up()
    assert first["sessions"] == 1
    assert clean_up() == dict.fromkeys(first, 0)


def test_heartbeat_twice(world):
    heartbeat()
    first = Heartbeat.objects.get(component=Heartbeat.WORKER).at
    heartbeat()
    rows = Heartbeat.objects.filter(component=Heartbeat.WORKER)
    # One row per component, only its time moves on.
    assert rows.count() == 1
    assert rows.get().at >= first
