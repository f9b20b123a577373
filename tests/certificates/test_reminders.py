"""Expiry reminders: 30 and 7 days before expiry and 7 days after, once each, to the applicant's
administrators and board signatories, each in their own language."""

from __future__ import annotations

import pytest
from django.test import override_settings
from django.utils import formats, translation

from mamori.audit.models import AuditEvent
from mamori.certificates.models import Certificate, Reminder, ReminderKind
from mamori.certificates.services import revoke
from mamori.certificates.tasks import send_expiry_reminders
from mamori.organisations.models import Role
from tests.certificates import certificate_expiring, days_from_today, read_mail_dir
from tests.conftest import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def remind(django_capture_on_commit_callbacks):
    """The beat's run: queue what is due, then deliver it as the commit would (in-process on
    the embedded default). Returns how many reminders were queued."""

    def run() -> int:
        with django_capture_on_commit_callbacks(execute=True):
            queued = send_expiry_reminders()
        return queued

    return run


@pytest.fixture
def english_signatory(world):
    """bob reads his e-mail in English; alice keeps the Japanese default."""
    world.signatory.language = "en"
    world.signatory.save(update_fields=["language"])
    return world.signatory


def move_expiry(certificate: Certificate, days: int) -> None:
    """Let time pass for one certificate: it now expires ``days`` from today."""
    Certificate.objects.filter(pk=certificate.pk).update(expires_on=days_from_today(days))


def mails_to(outbox, address: str) -> list:
    return [message for message in outbox if message.to == [address]]


@pytest.mark.parametrize(
    ("days_left", "kind"),
    [
        (31, None),
        (30, ReminderKind.BEFORE_30),
        (8, ReminderKind.BEFORE_30),
        (7, ReminderKind.BEFORE_7),
        (0, ReminderKind.BEFORE_7),
        (-6, None),
        (-7, ReminderKind.AFTER_7),
        (-30, ReminderKind.AFTER_7),
        (-31, None),
    ],
)
def test_reminder_due_by_days_left(remind, world, mailoutbox, days_left, kind):
    certificate = certificate_expiring(world, world.bank, days_from_today(days_left))

    sent = remind()

    kinds = list(Reminder.objects.filter(certificate=certificate).values_list("kind", flat=True))
    if kind is None:
        assert sent == 0
        assert kinds == []
        assert mailoutbox == []
    else:
        assert sent == 1
        assert kinds == [kind]
        # alice (applicant admin) and bob (board signatory); never carol, the contributor.
        assert sorted(message.to[0] for message in mailoutbox) == [
            world.admin.email,
            world.signatory.email,
        ]


def test_each_reminder_goes_out_once_over_a_certificates_life(remind, world, mailoutbox):
    certificate = certificate_expiring(world, world.bank, days_from_today(30))
    expected = []
    for days_left, kind in ((30, "before_30"), (7, "before_7"), (-7, "after_7")):
        move_expiry(certificate, days_left)
        assert remind() == 1
        expected.append(kind)
        # The beat runs the task many times a day: a second run sends nothing new.
        assert remind() == 0
        assert (
            list(
                Reminder.objects.filter(certificate=certificate)
                .order_by("sent_at", "pk")
                .values_list("kind", flat=True)
            )
            == expected
        )
        assert len(mailoutbox) == 2 * len(expected)
    reminders = Reminder.objects.filter(certificate=certificate)
    assert {reminder.recipients for reminder in reminders} == {2}
    logged = AuditEvent.objects.filter(
        action="certificate.reminder_sent", object_id=str(certificate.pk)
    )
    assert sorted(event.details["kind"] for event in logged) == sorted(expected)


def test_reminders_are_written_in_each_recipients_language(
    remind, world, english_signatory, mailoutbox
):
    certificate = certificate_expiring(world, world.bank, days_from_today(30))
    remind()

    (japanese,) = mails_to(mailoutbox, world.admin.email)
    (english,) = mails_to(mailoutbox, english_signatory.email)
    assert japanese.subject == f"認定証 {certificate.number} の有効期限まであと30日です"
    assert "テスト銀行の認定証" in japanese.body
    expires = certificate.expires_on
    assert f"{expires.year}年{expires.month}月{expires.day}日に有効期限を迎えます" in japanese.body
    assert "認定を継続するには" in japanese.body
    assert english.subject == f"Certificate {certificate.number} expires in 30 days"
    with translation.override("en"):
        english_date = formats.date_format(expires)
    assert f"Certificate {certificate.number} of Test Bank expires on {english_date}." in (
        english.body
    )
    assert "To stay certified, start a new assessment" in english.body
    assert "認定" not in english.subject

    move_expiry(certificate, -7)
    mailoutbox.clear()
    remind()
    (japanese,) = mails_to(mailoutbox, world.admin.email)
    (english,) = mails_to(mailoutbox, english_signatory.email)
    assert japanese.subject == f"認定証 {certificate.number} の有効期限が切れました"
    assert "公開登録簿には、認定を受けた組織として掲載されなくなりました" in japanese.body
    assert english.subject == f"Certificate {certificate.number} has expired"
    assert "The public register no longer lists the organisation" in english.body


def test_no_reminder_for_a_revoked_certificate(remind, world, mailoutbox):
    certificate = certificate_expiring(world, world.bank, days_from_today(7))
    revoke(world.assessor, world.access(world.assessor), certificate.pk, "serious incident")

    assert remind() == 0
    assert not Reminder.objects.exists()
    assert mailoutbox == []


def test_no_reminder_once_the_certificate_was_renewed(remind, world, mailoutbox):
    old = certificate_expiring(world, world.bank, days_from_today(7))
    renewed = certificate_expiring(world, world.bank, days_from_today(358))

    assert remind() == 0
    assert not Reminder.objects.filter(certificate__in=[old, renewed]).exists()
    assert mailoutbox == []

    # A renewal that was then revoked does not count: the old certificate still runs out.
    revoke(world.assessor, world.access(world.assessor), renewed.pk, "issued in error")
    assert remind() == 1
    assert Reminder.objects.get().certificate == old


def test_recipients_are_active_admins_and_signatories_of_that_organisation(
    remind, world, mailoutbox
):
    second_admin = make_user("alex", world.bank, Role.APPLICANT_ADMIN)
    departed = make_user("dora", world.bank, Role.BOARD_SIGNATORY)
    departed.is_active = False
    departed.save(update_fields=["is_active"])
    no_address = make_user("nemo", world.bank, Role.APPLICANT_ADMIN)
    no_address.email = ""
    no_address.save(update_fields=["email"])
    certificate_expiring(world, world.bank, days_from_today(7))
    other = certificate_expiring(world, world.other_bank, days_from_today(-7))

    assert remind() == 2

    addresses = sorted(message.to[0] for message in mailoutbox)
    assert addresses == sorted(
        [
            world.admin.email,
            world.signatory.email,
            second_admin.email,
            world.other_admin.email,
        ]
    )
    assert world.contributor.email not in addresses
    assert Reminder.objects.get(certificate=other).recipients == 1
    (oscar_mail,) = mails_to(mailoutbox, world.other_admin.email)
    assert other.number in oscar_mail.subject


def test_reminder_goes_to_files_with_the_embedded_mail_backend(remind, world, tmp_path):
    """The embedded default writes e-mail to files; the reminder must be readable there."""
    certificate = certificate_expiring(world, world.bank, days_from_today(30))
    with override_settings(
        EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
        EMAIL_FILE_PATH=str(tmp_path),
    ):
        assert remind() == 1

    messages = read_mail_dir(tmp_path)
    assert len(messages) == 2
    by_recipient = {message["To"]: message for message in messages}
    assert set(by_recipient) == {world.admin.email, world.signatory.email}
    japanese = by_recipient[world.admin.email]
    # Python folds the encoded header onto a continuation line; unfolding leaves a blank.
    assert japanese["Subject"].strip() == f"認定証 {certificate.number} の有効期限まであと30日です"
    assert "テスト銀行" in japanese.get_content()
