"""Alert e-mail through a real SMTP server (aiosmtpd on loopback, started and stopped by the
tests): incidents and KEV-listed alerts at once, the rest in a daily digest, per-user
preferences, each recipient in their language with links into Mamori, plain text without
attachments; a mail server that is down delays the message and never loses or doubles it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.db.models import F
from django.utils import timezone, translation

from mamori.core.errors import MamoriError, NotAllowed
from mamori.core.models import MailReceipt, OutboxMessage, OutboxState
from mamori.core.tasks import deliver_outbox
from mamori.earlywarning import alerts, notify
from mamori.earlywarning.models import (
    Alert,
    AlertDigest,
    AlertEvent,
    AlertState,
    AlertType,
    NotificationPreference,
)
from mamori.earlywarning.tasks import send_alert_mail, send_daily_digests, send_digest
from tests.conftest import make_user
from tests.core.test_mail_delivery import MailServer

from .alerting import claim_both_banks, import_report, outbox_due_now, tomorrow_at

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _documentation_assets(settings):
    settings.EARLYWARNING_DOCUMENTATION_ASSETS = True
    with translation.override("en"):
        yield


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


@pytest.fixture
def banks(world):
    claim_both_banks(world)
    world.contributor.language = "en"
    world.contributor.save(update_fields=["language"])
    return world


def link(alert: Alert) -> str:
    return f"{settings.SITE_URL}/earlywarning/alerts/{alert.pk}/"


def plain_text(message) -> str:
    """The body of a message that must be one plain-text part (no attachments, no HTML)."""
    assert not message.is_multipart()
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    return message.get_content()


def test_an_incident_goes_at_once_to_the_alert_handlers_each_in_their_language(
    banks, mail_server, commit
):
    mail_server.start()
    with commit():
        import_report("event4_sinkhole")
    incident = Alert.objects.get(organisation=banks.bank)
    assert incident.type == AlertType.INCIDENT
    # Handlers (administrator, contributor) by default; the board signatory reads the inbox.
    assert mail_server.recipients() == sorted(
        [banks.admin.email, banks.contributor.email, banks.other_admin.email]
    )

    (japanese,) = mail_server.to(banks.admin.email)
    body = plain_text(japanese)
    assert "alice 様" in body
    assert "直ちに対応が必要なアラート" in body
    assert "192.0.2.50" in body
    assert link(incident) in body
    # (A long subject is folded onto its own line: parsers keep the fold's space.)
    assert japanese["Subject"].strip().startswith("[Mamori] インシデント（侵害の兆候）：")

    (english,) = mail_server.to(banks.contributor.email)
    body = plain_text(english)
    assert body.splitlines()[0] == "Dear carol,"
    assert f"Mamori raised an alert for {banks.bank.name_en} that needs attention now" in body
    assert "Incident (signs of compromise) · severity: Critical · TLP:AMBER" in body
    assert "event4_sinkhole · 192.0.2.50 · pc-0142.bank-a.example" in body
    assert link(incident) in body
    assert "To be acknowledged by" in body
    assert english["Subject"].strip() == (
        "[Mamori] Incident (signs of compromise): event4_sinkhole · 192.0.2.50 · "
        f"pc-0142.bank-a.example ({banks.bank.name_en})"
    )
    # The other bank's incident went to its own administrator, and names nothing of ours.
    (theirs,) = mail_server.to(banks.other_admin.email)
    assert "192.0.2.50" not in plain_text(theirs)
    assert "198.51.100.77" in plain_text(theirs)


def test_exposures_wait_for_the_daily_digest_which_goes_out_once(banks, mail_server, commit):
    mail_server.start()
    with commit():
        import_report("scan_rdp")
        import_report("event4_sinkhole")
    at_once = len(mail_server.accepted)
    assert at_once == 3  # the incidents only (two handlers of the bank, one of the other)
    assert not AlertDigest.objects.exists()

    # Before the digest hour of the next day nothing is due; from it, the day's digests.
    with commit():
        assert notify.queue_digests(now=tomorrow_at(settings.EARLYWARNING_DIGEST_HOUR - 1)) == 0
    with commit():
        assert notify.queue_digests(now=tomorrow_at(settings.EARLYWARNING_DIGEST_HOUR)) == 2
    digests = mail_server.accepted[at_once:]
    assert sorted(message["To"] for message in digests) == sorted(
        [banks.admin.email, banks.contributor.email, banks.other_admin.email]
    )
    (digest,) = mail_server.to(banks.contributor.email)[1:]
    body = plain_text(digest)
    exposures = Alert.objects.filter(organisation=banks.bank, type=AlertType.EXPOSURE)
    assert exposures.count() == 2
    for exposure in exposures:
        assert link(exposure) in body
    assert "192.0.2.10:3389" in body
    assert "192.0.2.11:3390" in body
    # Already sent at once: not repeated in the digest.
    assert "192.0.2.50" not in body
    assert digest["Subject"].strip().startswith(f"[Mamori] Daily digest for {banks.bank.name_en}")
    assert digest["Subject"].endswith(": 2 alerts")
    assert f"Every alert of the organisation: {settings.SITE_URL}/earlywarning/alerts/" in body
    assert all(d.sent_at is not None for d in AlertDigest.objects.all())

    # The beat every hour, the task again: nothing more.
    with commit():
        assert notify.queue_digests(now=tomorrow_at(settings.EARLYWARNING_DIGEST_HOUR + 1)) == 0
    for pending in AlertDigest.objects.all():
        assert send_digest(pending.pk) == 0
    assert len(mail_server.accepted) == at_once + 3


def test_each_member_chooses_what_comes_at_once_and_whether_a_digest_comes(
    banks, mail_server, commit
):
    mail_server.start()
    bank = banks.bank.pk
    # The contributor wants exposures at once and no digest; the signatory incidents at once.
    notify.set_preferences(
        banks.contributor,
        banks.access(banks.contributor),
        bank,
        immediate=["exposure"],
        daily_digest=False,
    )
    notify.set_preferences(
        banks.signatory,
        banks.access(banks.signatory),
        bank,
        immediate=["incident"],
        daily_digest=True,
    )
    assert notify.preferences_for(banks.admin, bank) == notify.HANDLER_DEFAULT
    assert notify.preferences_for(banks.contributor, bank).immediate == {"exposure"}

    with commit():
        import_report("scan_rdp")
        import_report("event4_sinkhole")
    (exposures,) = mail_server.to(banks.contributor.email)
    body = plain_text(exposures)
    assert "192.0.2.10:3389" in body
    assert "192.0.2.11:3390" in body
    assert "192.0.2.50" not in body
    assert exposures["Subject"].strip() == (
        f"[Mamori] 2 alerts for {banks.bank.name_en} need attention now"
    )
    (incident,) = mail_server.to(banks.signatory.email)
    assert "192.0.2.50" in plain_text(incident)

    with commit():
        notify.queue_digests(now=tomorrow_at(settings.EARLYWARNING_DIGEST_HOUR))
    # No digest for the contributor; the signatory's lists the exposures.
    assert len(mail_server.to(banks.contributor.email)) == 1
    signatory_digest = mail_server.to(banks.signatory.email)[1]
    assert "192.0.2.10:3389" in plain_text(signatory_digest)


def test_preferences_are_checked(banks):
    access = banks.access(banks.contributor)
    with pytest.raises(MamoriError, match="'weekly' is not a kind of alert"):
        notify.set_preferences(
            banks.contributor, access, banks.bank.pk, immediate=["weekly"], daily_digest=True
        )
    with pytest.raises(NotAllowed, match="Only the organisation's members"):
        notify.set_preferences(
            banks.outsider,
            banks.access(banks.outsider),
            banks.bank.pk,
            immediate=["incident"],
            daily_digest=True,
        )
    assert not NotificationPreference.objects.exists()
    # Members without a handler role get nothing until they ask.
    assert notify.preferences_for(banks.signatory, banks.bank.pk) == notify.MEMBER_DEFAULT


def test_an_incident_raised_while_the_mail_server_is_down_goes_out_once_it_is_back(
    banks, mail_server, commit
):
    with commit():
        import_report("event4_sinkhole")
    (waiting,) = OutboxMessage.objects.filter(
        task=send_alert_mail.name, state=OutboxState.PENDING, args__0=banks.bank.pk
    )
    assert "Connection refused" in waiting.last_error
    assert not MailReceipt.objects.filter(accepted_at__isnull=False).exists()
    outbox_due_now()
    deliver_outbox()  # still down
    assert mail_server.accepted == []

    mail_server.start()
    outbox_due_now()
    assert deliver_outbox() == 2  # the two banks' messages
    assert mail_server.recipients() == sorted(
        [banks.admin.email, banks.contributor.email, banks.other_admin.email]
    )
    outbox_due_now()
    assert deliver_outbox() == 0
    waiting.refresh_from_db()
    assert waiting.state == OutboxState.DONE
    # Run by hand again (a redelivered message): nothing is sent twice.
    assert send_alert_mail(*waiting.args) == 0
    assert len(mail_server.accepted) == 3


def _vulnerability(world, *, kev: bool, cve: str) -> alerts.Sighting:
    return alerts.Sighting(
        organisation_id=world.bank.pk,
        type=AlertType.SOFTWARE_VULNERABILITY,
        key=alerts.alert_key("software", "host-1", cve),
        category="kev" if kev else "osv",
        seen_at=timezone.now(),
        severity="critical" if kev else "medium",
        control="security_update_management",
        cve=cve,
        advisory=f"DEBIAN-{cve}",
        package="openssl",
        installed_version="3.0.11-1~deb12u2",
        kev=kev,
        kev_due=timezone.localdate() + dt.timedelta(days=14) if kev else None,
        epss=0.97 if kev else 0.01,
        epss_percentile=0.999 if kev else 0.2,
    )


def test_a_kev_listed_vulnerability_goes_at_once_and_another_waits(banks, mail_server, commit):
    """What the KEV and OSV feeds do: ``alerts.upsert`` then ``notify.alerts_raised``."""
    mail_server.start()
    with commit():
        upserted = alerts.upsert(
            [
                _vulnerability(banks, kev=True, cve="CVE-2024-0001"),
                _vulnerability(banks, kev=False, cve="CVE-2024-0002"),
            ],
            feed=None,
        )
        notify.alerts_raised(upserted)
    assert len(mail_server.accepted) == 2
    body = plain_text(mail_server.to(banks.contributor.email)[0])
    assert "Software vulnerability · severity: Critical · in CISA KEV" in body
    assert "CVE-2024-0001 · openssl 3.0.11-1~deb12u2" in body
    assert "CVE-2024-0002" not in body


def test_a_reopened_incident_is_news_again(banks, mail_server, commit):
    mail_server.start()
    with commit():
        import_report("event4_sinkhole")
    incident = Alert.objects.get(organisation=banks.bank)
    alerts.change_state(banks.admin, banks.access(banks.admin), incident, AlertState.CLOSED)
    before = len(mail_server.to(banks.admin.email))
    with commit():
        upserted = alerts.upsert(
            [
                alerts.Sighting(
                    organisation_id=banks.bank.pk,
                    type=incident.type,
                    key=incident.key,
                    category=incident.category,
                    seen_at=timezone.now() + dt.timedelta(minutes=1),
                    severity=incident.severity,
                    ip=incident.ip,
                )
            ],
            feed=None,
        )
        notify.alerts_raised(upserted)
    assert [alert.pk for alert in upserted.reopened] == [incident.pk]
    again = mail_server.to(banks.contributor.email)[-1]
    assert len(mail_server.to(banks.admin.email)) == before + 1
    assert "Incident (signs of compromise) · reopened" in plain_text(again)


def test_a_user_without_an_address_or_inactive_gets_nothing(banks, mail_server, commit):
    mail_server.start()
    quiet = make_user("quinn", banks.bank, "applicant_contributor")
    quiet.email = ""
    quiet.save(update_fields=["email"])
    gone = make_user("gary", banks.bank, "applicant_admin")
    gone.is_active = False
    gone.save(update_fields=["is_active"])
    with commit():
        import_report("event4_sinkhole")
    assert gone.email not in mail_server.recipients()
    assert len(mail_server.to(banks.admin.email)) == 1


def test_the_digest_beat_and_the_mail_tasks_twice_send_once(banks, mailoutbox):
    """RUN_TWICE (tests/core/test_tasks_run_twice.py): each task twice, the effect of once."""
    import_report("scan_rdp")
    import_report("event4_sinkhole")
    (message,) = OutboxMessage.objects.filter(task=send_alert_mail.name, args__0=banks.bank.pk)
    mailoutbox.clear()
    assert send_alert_mail(*message.args) == 2
    assert send_alert_mail(*message.args) == 0
    assert len(mailoutbox) == 2

    # The alerts were raised two days ago (within the days the beat still catches up on).
    AlertEvent.objects.update(at=F("at") - dt.timedelta(days=2))
    assert send_daily_digests() == 2
    assert send_daily_digests() == 0
    digest = AlertDigest.objects.get(organisation=banks.bank)
    mailoutbox.clear()
    assert send_digest(digest.pk) == 2  # the administrator's and the contributor's
    assert send_digest(digest.pk) == 0
    AlertDigest.objects.filter(pk=digest.pk).update(sent_at=None)  # as if it died after sending
    assert send_digest(digest.pk) == 0
    assert sorted(m.to[0] for m in mailoutbox) == sorted(
        [banks.admin.email, banks.contributor.email]
    )
    assert AlertDigest.objects.get(pk=digest.pk).recipients == 2
