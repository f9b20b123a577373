"""Board packs on the pages: made from the samples, rendered by a task to PDF and XLSX in both
languages, downloaded as attachments, signed by the named cyber-risk owner with a TOTP code (the
signature an audit entry with the pack's digest), then unchangeable; the public verification
page says only when the board reviewed; reminders for an unsigned quarter; outsiders get 404."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest
from django.test import Client, TestCase
from django.urls import reverse
from django.utils import timezone

from mamori.audit.models import AuditEvent
from mamori.audit.services import verify_trail
from mamori.certificates.models import Certificate
from mamori.core.tasks import deliver_outbox
from mamori.organisations.models import Role
from mamori.reporting import pack, services
from mamori.reporting.models import BoardPack, CyberRiskOwner
from mamori.reporting.tasks import quarterly_packs, render_pack, send_pack_reminder
from tests.conftest import client_for, make_user
from tests.reporting import scene

pytestmark = pytest.mark.django_db

JST = dt.timezone(dt.timedelta(hours=9))
NOW = dt.datetime(2026, 11, 5, 10, tzinfo=JST)
QUARTER = pack.Period(dt.date(2026, 7, 1), dt.date(2026, 9, 30))


def frozen(moment: dt.datetime = NOW):
    return mock.patch("django.utils.timezone.now", return_value=moment.astimezone(dt.UTC))


@pytest.fixture
def bank(world):
    scene.store([world.bank, world.other_bank], every=7)
    world.signatory.first_name, world.signatory.last_name = "Bob", "Board"
    world.signatory.save()
    make_user("dora", world.bank, Role.BOARD_SIGNATORY)  # another director
    from django_otp.plugins.otp_totp.models import TOTPDevice

    TOTPDevice.objects.create(user=world.signatory, name="phone", confirmed=True)
    return world


def make(world, client=None, *, render=False):
    """The admin makes the Q3 2026 pack on the page; ``render``: the embedded worker's outbox
    run then renders its files (seconds; never in the request itself)."""
    client = client or client_for(world.admin)
    with frozen(), TestCase.captureOnCommitCallbacks(execute=True):
        response = client.post(
            reverse("reporting:make", args=[world.bank.pk]),
            {"period_from": "2026-07-01", "period_to": "2026-09-30"},
        )
    assert response.status_code == 302, response.content.decode()[:500]
    made = BoardPack.objects.get(pk=int(response.url.rstrip("/").rsplit("/", 1)[1]))
    assert made.rendered_at is None  # the request did not render
    if render:
        assert deliver_outbox() >= 1
    return made


def test_a_pack_is_made_from_the_samples_rendered_by_the_worker_and_downloaded(bank):
    made = make(bank, render=True)
    content = made.content
    assert content["period"] == {"from": "2026-07-01", "to": "2026-09-30"}
    assert content["previous"] == {"from": "2026-04-01", "to": "2026-06-30"}
    malware = next(row for row in content["controls"] if row["key"] == "malware_protection")
    # 70 % of hosts pass on 30 September (red), 95 % at the end of June (green).
    assert (malware["now"], malware["status"]) == (0.7, "red")
    assert (malware["before"], malware["status_before"]) == (0.95, "green")
    kinds = [decision["kind"] for decision in content["decisions"]]
    # A KEV finding open 29 days, the certificate expiring in 61 days, a single supplier.
    assert kinds == ["kev_overdue", "certificate_expiring", "single_supplier"]
    assert [q["to"] for q in content["trends"]["quarters"]] == [
        "2025-12-31", "2026-03-31", "2026-06-30", "2026-09-30"
    ]  # fmt: skip
    made.refresh_from_db()
    assert made.rendered_at is not None
    for field in ("pdf_ja", "pdf_en", "xlsx_ja", "xlsx_en"):
        assert getattr(made, field).size > 1000, field
    made_event = AuditEvent.objects.get(action="reporting.pack_made")
    assert made_event.details["digest"] == made.digest == content["digest"]
    # Rendering again (a message delivered twice) keeps the files it stored.
    names = [made.pdf_ja.name, made.xlsx_en.name]
    assert render_pack(made.pk) is False
    made.refresh_from_db()
    assert [made.pdf_ja.name, made.xlsx_en.name] == names
    # The pack's page shows the summary and serves the files as attachments.
    client = client_for(bank.signatory)
    page = client.get(reverse("reporting:pack", args=[made.pk]))
    text = page.content.decode()
    assert page.status_code == 200
    assert made.digest in text
    assert "マルウェア対策" in text  # the control, in Japanese by default
    assert "<script" not in text.split("<main", 1)[-1].split("</main>", 1)[0]
    response = client.get(reverse("reporting:pack_file", args=[made.pk, "pdf", "en"]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment;")
    assert b"".join(response.streaming_content).startswith(b"%PDF")
    xlsx = client.get(reverse("reporting:pack_file", args=[made.pk, "xlsx", "ja"]))
    assert xlsx["Content-Disposition"].startswith("attachment;")
    assert (
        client.get(reverse("reporting:pack_file", args=[made.pk, "exe", "ja"])).status_code == 404
    )


def test_the_same_figures_give_the_same_pack_and_other_figures_a_new_version(bank):
    first = make(bank)
    assert make(bank) == first
    from mamori.reporting.models import MetricSample

    MetricSample.objects.filter(organisation=bank.bank, day=QUARTER.last, metric="kev_open").update(
        value=2
    )
    second = make(bank)
    assert (second.version, first.version) == (2, 1)
    assert second.digest != first.digest


def test_the_owner_signs_with_a_totp_code_and_the_pack_no_longer_changes(bank, mailoutbox):
    made = make(bank)
    admin = client_for(bank.admin)
    with frozen():
        named = admin.post(
            reverse("reporting:owner", args=[bank.bank.pk]), {"user": bank.signatory.pk}
        )
    assert named.status_code == 302
    assert CyberRiskOwner.objects.get(organisation=bank.bank).user == bank.signatory
    owner = client_for(bank.signatory)
    url = reverse("reporting:sign", args=[made.pk])
    form = {"meeting_date": "2026-10-20", "minutes_reference": "BM-2026-10", "comment": "Agreed"}
    with frozen():
        wrong = owner.post(url, {**form, "code": "000000"})
    assert wrong.status_code == 422
    assert "コードが正しくありません" in wrong.content.decode() or "code" in wrong.content.decode()
    with frozen():
        signed = owner.post(url, {**form, "code": scene.totp_code(bank.signatory)})
    assert signed.status_code == 302
    made.refresh_from_db()
    assert (made.meeting_date, made.minutes_reference, made.signed_by) == (
        dt.date(2026, 10, 20), "BM-2026-10", bank.signatory
    )  # fmt: skip
    event = AuditEvent.objects.get(seq=made.signature_seq)
    assert (event.action, event.actor_id) == ("reporting.pack_signed", bank.signatory.pk)
    assert event.details["digest"] == made.digest
    assert verify_trail() is None
    # Signed: the page says so, the form is gone, signing again is refused.
    # A fresh session: the frozen clock above dated the old one's expiry in the past.
    response = client_for(bank.signatory).get(reverse("reporting:pack", args=[made.pk]))
    page = response.content.decode()
    assert response.status_code == 200, response
    assert 'id="signed"' in page
    assert 'id="sign-form"' not in page
    with frozen(), pytest.raises(services.ReportingError):
        services.sign_pack(
            bank.signatory, bank.access(bank.signatory), made.pk,
            meeting_date=dt.date(2026, 10, 21), minutes_reference="x", comment="",
            code=scene.totp_code(bank.signatory),
        )  # fmt: skip


@pytest.mark.parametrize("who", ["admin", "contributor", "dora"])
def test_only_the_named_owner_may_sign(bank, who):
    made = make(bank)
    services.name_owner(bank.admin, bank.access(bank.admin), bank.bank, bank.signatory.pk)
    user = getattr(bank, who, None) or bank.bank.memberships.get(user__username=who).user
    response = client_for(user).post(
        reverse("reporting:sign", args=[made.pk]),
        {"meeting_date": "2026-10-20", "minutes_reference": "BM", "code": "123456"},
    )
    # The contributor does not see packs at all; the others are told only the owner signs.
    assert response.status_code == (404 if who == "contributor" else 422)
    made.refresh_from_db()
    assert made.signed_at is None


def test_the_owner_must_be_a_board_member(bank):
    response = client_for(bank.admin).post(
        reverse("reporting:owner", args=[bank.bank.pk]), {"user": bank.contributor.pk}
    )
    assert response.status_code == 422
    assert not CyberRiskOwner.objects.exists()


def test_the_public_page_says_when_the_board_reviewed_and_nothing_more(bank):
    bank.passed()
    certificate = Certificate.objects.get(organisation=bank.bank)
    public = client_for(make_user("reader"))
    url = reverse("certificates:verify", args=[certificate.number])
    assert 'id="board-reviewed"' not in public.get(url).content.decode()
    made = make(bank)
    services.name_owner(bank.admin, bank.access(bank.admin), bank.bank, bank.signatory.pk)
    with frozen():
        services.sign_pack(
            bank.signatory, bank.access(bank.signatory), made.pk,
            meeting_date=dt.date(2026, 10, 20), minutes_reference="BM-2026-10",
            comment="Secret remark", code=scene.totp_code(bank.signatory),
        )  # fmt: skip

    text = Client().get(url).content.decode()
    assert "2026-10-20" in text
    assert 'id="board-reviewed"' in text
    for private in ("BM-2026-10", "Secret remark", made.digest, "マルウェア"):
        assert private not in text


@pytest.mark.parametrize("who", ["other_admin", "outsider", "assessor", "owner"])
def test_another_organisation_cannot_reach_the_pack(bank, who):
    made = make(bank)
    client = client_for(getattr(bank, who))
    for url in (
        reverse("reporting:pack", args=[made.pk]),
        reverse("reporting:pack_file", args=[made.pk, "pdf", "ja"]),
        reverse("reporting:organisation", args=[bank.bank.pk]),
    ):
        assert client.get(url).status_code == 404, url


def test_the_quarterly_pack_is_made_once_and_its_owner_reminded_after_30_days(bank, mailoutbox):
    services.name_owner(bank.admin, bank.access(bank.admin), bank.bank, bank.signatory.pk)
    with (
        frozen(dt.datetime(2026, 10, 2, 9, tzinfo=JST)),
        TestCase.captureOnCommitCallbacks(execute=False),  # the files: another test's
    ):
        assert quarterly_packs() == {"made": 2, "reminded": 0}
        assert quarterly_packs() == {"made": 0, "reminded": 0}
    assert mailoutbox == []
    made = BoardPack.objects.get(organisation=bank.bank)
    assert made.quarterly
    with frozen(dt.datetime(2026, 10, 29, 9, tzinfo=JST)):
        assert quarterly_packs()["reminded"] == 0  # 29 days after the quarter
    with (
        frozen(dt.datetime(2026, 10, 30, 9, tzinfo=JST)),
        TestCase.captureOnCommitCallbacks(execute=True),
    ):
        assert quarterly_packs()["reminded"] == 2
        assert quarterly_packs()["reminded"] == 0
    to_owner = [m for m in mailoutbox if m.to == [bank.signatory.email]]
    assert len(to_owner) == 1
    # The reminder's message delivered twice: each person still gets it once.
    assert send_pack_reminder(made.pk) == 0
    assert len([m for m in mailoutbox if m.to == [bank.signatory.email]]) == 1
    assert reverse("reporting:pack", args=[made.pk]) in to_owner[0].body
    # A quarter whose pack was made again and the new version signed needs no reminder.
    other_pack = BoardPack.objects.get(organisation=bank.other_bank)
    BoardPack.objects.filter(pk=other_pack.pk).update(reminded_at=None)
    BoardPack.objects.create(
        organisation=bank.other_bank, period_from=other_pack.period_from,
        period_to=other_pack.period_to, version=2, content={}, digest="x" * 64,
        signed_at=timezone.now(),
    )  # fmt: skip
    assert services.packs_needing_reminder(dt.date(2026, 11, 30)) == []
    # The other bank has no owner yet: its administrator is asked to name one.
    assert [m.to for m in mailoutbox if m not in to_owner] == [[bank.other_admin.email]]


@pytest.mark.parametrize(
    ("period_from", "period_to", "message"),
    [
        ("2026-09-30", "2026-07-01", "期間の開始日"),
        ("2026-10-01", "2026-11-30", "終わった日"),
        ("2025-01-01", "2026-09-30", "1年"),
        ("2026-07-01", "not a date", ""),
    ],
)
def test_a_bad_period_is_a_form_error(bank, period_from, period_to, message):
    with frozen():
        response = client_for(bank.admin).post(
            reverse("reporting:make", args=[bank.bank.pk]),
            {"period_from": period_from, "period_to": period_to},
        )
    assert response.status_code == 422
    assert message in response.content.decode()
    assert not BoardPack.objects.exists()


def test_the_api_gives_a_pack_with_its_content_to_its_board(bank):
    made = make(bank)
    from tests.conftest import api_token

    client = Client(HTTP_AUTHORIZATION=f"Token {api_token(bank.signatory, bank.bank)}")
    listed = client.get("/api/reporting/packs/").json()["results"]
    assert [item["id"] for item in listed] == [made.pk]
    detail = client.get(f"/api/reporting/packs/{made.pk}/").json()
    assert detail["digest"] == made.digest
    assert detail["content"] == made.content
    assert (detail["period_from"], detail["rendered"], detail["signed_at"]) == (
        "2026-07-01", False, None
    )  # fmt: skip
    other = Client(HTTP_AUTHORIZATION=f"Token {api_token(bank.other_admin, bank.other_bank)}")
    refused = other.get(f"/api/reporting/packs/{made.pk}/")
    assert refused.status_code == 404
    assert made.digest not in refused.content.decode()
