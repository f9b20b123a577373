"""E-mail with a real SMTP server (aiosmtpd on loopback) that the test keeps down and then brings
up, and Django's SMTP backend pointed at it: certificate reminders, supplier invitations and
reminders, and workflow mail are recorded as sent only once the server accepted them, wait in
the outbox while it is down, go out once it is back, and never twice."""

from __future__ import annotations

import datetime as dt
import email
import socket
import threading
from email import policy

import pytest
from aiosmtpd.controller import Controller
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from mamori.assessments import services as assessment_services
from mamori.assessments.tasks import send_workflow_mail
from mamori.audit.models import AuditEvent
from mamori.certificates.models import Reminder
from mamori.certificates.tasks import send_expiry_reminder, send_expiry_reminders
from mamori.core.models import MailReceipt, OutboxMessage, OutboxState
from mamori.core.tasks import deliver_outbox
from mamori.organisations.access import Access
from mamori.supplychain import services as supply_services
from mamori.supplychain import tasks as supply_tasks
from mamori.supplychain.models import Invitation
from tests.certificates import certificate_expiring, days_from_today
from tests.conftest import client_for
from tests.supplychain.test_survey_cascade import LINK

pytestmark = pytest.mark.django_db


class MailServer:
    """An SMTP server on a fixed loopback port, stopped and started by the test; it keeps what
    it accepted, and refuses the recipients in ``refuse``. (aiosmtpd names the hooks.)"""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.accepted: list[email.message.EmailMessage] = []
        self.refuse: set[str] = set()
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        with self._lock:
            self.accepted.append(message)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list:
        with self._lock:
            return [m for m in self.accepted if m["To"] == address]

    def recipients(self) -> list[str]:
        with self._lock:
            return sorted(m["To"] for m in self.accepted)


@pytest.fixture
def mail_server(settings):
    """Down until the test starts it."""
    server = MailServer()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", server.port, 5
    yield server
    server.stop()


@pytest.fixture
def commit(django_capture_on_commit_callbacks):
    return lambda: django_capture_on_commit_callbacks(execute=True)


def time_passes() -> None:
    """The backoff has run out: every pending outbox row is due."""
    OutboxMessage.objects.filter(state=OutboxState.PENDING).update(due_at=timezone.now())


def expiring(world, organisation, days: int):
    certificate = certificate_expiring(world, organisation, days_from_today(days))
    # Its PDF is queued too; rendering it is other tests' business.
    OutboxMessage.objects.all().delete()
    return certificate


def pending(task) -> list[OutboxMessage]:
    return list(OutboxMessage.objects.filter(task=task.name, state=OutboxState.PENDING))


def test_a_certificate_reminder_waits_for_the_mail_server_and_goes_out_once(
    world, mail_server, commit
):
    certificate = expiring(world, world.bank, 30)
    with commit():
        assert send_expiry_reminders() == 1
    reminder = Reminder.objects.get(certificate=certificate)
    # The server is down: not sent, not audited as sent, and waiting in the outbox.
    assert reminder.sent_at is None
    assert not AuditEvent.objects.filter(action="certificate.reminder_sent").exists()
    (waiting,) = pending(send_expiry_reminder)
    assert "Connection refused" in waiting.last_error
    # The beat runs again meanwhile: nothing is queued twice, nothing is dropped.
    with commit():
        assert send_expiry_reminders() == 0
    time_passes()
    assert deliver_outbox() == 0  # still down: the attempt fails again
    assert mail_server.accepted == []

    mail_server.start()
    time_passes()
    assert deliver_outbox() == 1
    assert mail_server.recipients() == sorted([world.admin.email, world.signatory.email])
    reminder.refresh_from_db()
    assert reminder.sent_at is not None
    assert reminder.recipients == 2
    assert AuditEvent.objects.filter(action="certificate.reminder_sent").count() == 1

    # Everything again: the beat, the outbox and the task itself send nothing more.
    with commit():
        assert send_expiry_reminders() == 0
    time_passes()
    assert deliver_outbox() == 0
    assert send_expiry_reminder(reminder.pk) == 0
    assert len(mail_server.accepted) == 2
    assert AuditEvent.objects.filter(action="certificate.reminder_sent").count() == 1


def test_a_reminder_refused_for_one_recipient_goes_to_that_one_only_on_the_retry(
    world, mail_server, commit
):
    mail_server.start()
    mail_server.refuse.add(world.signatory.email)
    expiring(world, world.bank, 7)
    with commit():
        send_expiry_reminders()
    assert mail_server.recipients() == [world.admin.email]
    reminder = Reminder.objects.get()
    assert reminder.sent_at is None
    (waiting,) = pending(send_expiry_reminder)
    assert "SMTPRecipientsRefused" in waiting.last_error or "550" in waiting.last_error

    mail_server.refuse.clear()
    time_passes()
    assert deliver_outbox() == 1
    assert mail_server.recipients() == sorted([world.admin.email, world.signatory.email])
    reminder.refresh_from_db()
    assert reminder.sent_at is not None
    # Each message carries the id made from its key: one id per recipient, never reused.
    ids = {message["Message-ID"] for message in mail_server.accepted}
    assert len(ids) == 2
    assert MailReceipt.objects.filter(accepted_at__isnull=False).count() == 2


def _campaign(world):
    access = Access.for_user(world.admin)
    service = supply_services.create_service(
        world.admin, access, world.bank, name_ja="勘定系", name_en="Core banking"
    )
    campaign = supply_services.create_campaign(
        world.admin,
        access,
        world.bank,
        title="2026 survey",
        services=[service],
        deadline=timezone.localdate() + dt.timedelta(days=30),
        site_url="http://testserver/",
    )
    return campaign, service


def _link_in(message) -> str:
    match = LINK.search(message.get_content())
    assert match, message.get_content()
    return match.group(1)


def test_an_invitation_made_while_the_mail_server_is_down_is_sent_when_it_is_back(
    world, mail_server, commit
):
    """Through the page: the invitation is saved and the inviter told so (no 500); the e-mail
    with the link goes out once the server is back."""
    campaign, service = _campaign(world)
    with commit():
        response = client_for(world.admin).post(
            reverse("supplychain:campaign", args=[campaign.pk]),
            {
                "target": str(service.pk),
                "need": "network",
                "supplier_name": "Carrier N",
                "country": "JP",
                "email": "n@example.jp",
            },
        )
    assert response.status_code == 302, response.content.decode()[:500]
    invitation = Invitation.objects.get(email="n@example.jp")
    assert pending(supply_tasks.send_invitation_mail)

    mail_server.start()
    time_passes()
    assert deliver_outbox() == 1
    (message,) = mail_server.to("n@example.jp")
    token = _link_in(message)
    assert supply_services.resolve_token(token) == invitation
    assert Client().get(f"/supply/i/{token}/").status_code == 200
    time_passes()
    assert deliver_outbox() == 0
    assert len(mail_server.accepted) == 1


def test_a_supplier_reminder_keeps_the_old_link_until_the_new_one_was_delivered(
    world, mail_server, commit
):
    campaign, service = _campaign(world)
    mail_server.start()
    with commit():
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
    (invitation_mail,) = mail_server.to("n@example.jp")
    old_token = _link_in(invitation_mail)
    assert old_token == sent.token
    Invitation.objects.filter(pk=sent.invitation.pk).update(
        due_on=timezone.localdate() - dt.timedelta(days=1)
    )

    mail_server.stop()
    with commit():
        assert supply_tasks.send_invitation_reminders() == 1
    # Not delivered: the link the supplier has still works, and nothing says "reminded".
    assert Client().get(f"/supply/i/{old_token}/").status_code == 200
    assert not AuditEvent.objects.filter(action="supplychain.invitation_reminded").exists()
    assert pending(supply_tasks.send_invitation_mail)

    mail_server.start()
    time_passes()
    assert deliver_outbox() == 1
    (_invitation, reminder) = mail_server.to("n@example.jp")
    new_token = _link_in(reminder)
    assert new_token != old_token
    # Delivered: the new link works, the old one retired.
    assert Client().get(f"/supply/i/{new_token}/").status_code == 200
    assert Client().get(f"/supply/i/{old_token}/").status_code == 404
    assert AuditEvent.objects.filter(action="supplychain.invitation_reminded").count() == 1
    invitation = Invitation.objects.get(pk=sent.invitation.pk)
    assert invitation.pending_token_hash is None
    # Once: the outbox and the beat send nothing more in this window.
    time_passes()
    assert deliver_outbox() == 0
    with commit():
        assert supply_tasks.send_invitation_reminders() == 0
    assert len(mail_server.to("n@example.jp")) == 2


def test_an_undelivered_reminder_is_replaced_by_the_next_one_never_both_sent(
    world, mail_server, commit
):
    """Down for longer than a reminder window: the second reminder's link replaces the first
    pending one; once the server is back only the newest goes out."""
    campaign, service = _campaign(world)
    mail_server.start()
    with commit():
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
    mail_server.stop()
    Invitation.objects.filter(pk=sent.invitation.pk).update(
        due_on=timezone.localdate() - dt.timedelta(days=1)
    )
    with commit():
        assert supply_tasks.send_invitation_reminders() == 1
    Invitation.objects.filter(pk=sent.invitation.pk).update(
        last_reminded_at=timezone.now() - supply_services.REMINDER_WINDOW - dt.timedelta(1)
    )
    with commit():
        assert supply_tasks.send_invitation_reminders() == 1
    assert len(pending(supply_tasks.send_invitation_mail)) == 2

    mail_server.start()
    time_passes()
    deliver_outbox()
    (_invitation, reminder) = mail_server.to("n@example.jp")
    token = _link_in(reminder)
    assert Client().get(f"/supply/i/{token}/").status_code == 200
    assert Client().get(f"/supply/i/{sent.token}/").status_code == 404
    assert not pending(supply_tasks.send_invitation_mail)
    assert AuditEvent.objects.filter(action="supplychain.invitation_reminded").count() == 1


def test_workflow_mail_waits_for_the_mail_server_and_goes_out_once(world, mail_server, commit):
    assessment = world.start()
    world.answer_all(assessment)
    world.sign(assessment)
    with commit():
        assessment_services.submit(world.admin, world.access(world.admin), assessment.pk)
    assessment.refresh_from_db()
    (waiting,) = pending(send_workflow_mail)
    assert "Connection refused" in waiting.last_error

    mail_server.start()
    time_passes()
    assert deliver_outbox() == 1
    assessor = assessment.assessor
    (message,) = mail_server.to(assessor.email)
    assert assessment.reference in message["Subject"]
    # The same message again (a redelivery runs the task with the same arguments): not sent.
    send_workflow_mail(*waiting.args)
    time_passes()
    assert deliver_outbox() == 0
    assert len(mail_server.accepted) == 1


def test_a_link_whose_mail_waited_across_a_key_change_is_made_anew(world, mail_server, commit):
    """The link is rebuilt from its nonce with SECRET_KEY when its mail is finally sent. Should
    the key have changed meanwhile, the link cannot be rebuilt: since it never reached anyone,
    a new one takes its place. Once delivered, a later key change touches nothing."""
    campaign, service = _campaign(world)
    with commit():
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
    (waiting,) = pending(supply_tasks.send_invitation_mail)
    with override_settings(SECRET_KEY="another-key-" + "k" * 40):
        mail_server.start()
        time_passes()
        assert deliver_outbox() == 1
        (message,) = mail_server.to("n@example.jp")
        token = _link_in(message)
        assert token != sent.token
        assert Client().get(f"/supply/i/{token}/").status_code == 200
        assert Client().get(f"/supply/i/{sent.token}/").status_code == 404
    # The task runs once more (a redelivery) under yet another key: nothing is sent or changed.
    with override_settings(SECRET_KEY="a-third-key-" + "k" * 40):
        assert supply_tasks.send_invitation_mail(*waiting.args) is False
    assert len(mail_server.accepted) == 1
    assert Client().get(f"/supply/i/{token}/").status_code == 200
