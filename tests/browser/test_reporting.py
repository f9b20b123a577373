"""Board reporting in a real browser (issue 12): the director who owns the bank's cyber risk opens
the last quarter's board pack, downloads its PDF, signs it with the code of the authenticator
app; the public verification page of the bank's certificate then says when the board reviewed
it; the other bank's administrator cannot reach the pack (404)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from mamori.certificates.models import Certificate
from mamori.reporting import pack, services
from mamori.reporting.models import BoardPack
from mamori.reporting.tasks import render_pack
from tests.browser.conftest import ui
from tests.conftest import PASSWORD
from tests.reporting import scene as samples

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def scene(world):
    """The bank certified, a year of weekly samples up to the last finished quarter, its board
    member bob named cyber-risk owner (with an authenticator app), and the quarter's pack."""
    world.passed()
    quarter = pack.last_finished_quarter(timezone.localdate())
    samples.store([world.bank], quarter.last - dt.timedelta(days=364), quarter.last, every=7)
    for user in (world.signatory, world.other_admin):
        user.set_password(PASSWORD)
        user.save(update_fields=["password"])
    TOTPDevice.objects.create(user=world.signatory, name="phone", confirmed=True)
    services.name_owner(world.admin, world.access(world.admin), world.bank, world.signatory.pk)
    world.pack = services.make_pack(None, world.bank, quarter, quarterly=True)
    render_pack(world.pack.pk)  # as the worker does
    world.quarter = quarter
    return world


@pytest.mark.parametrize("language", ["ja", "en"])
def test_the_owner_reviews_downloads_and_signs_the_quarters_pack(scene, browse, language):
    tab = browse("owner", language)
    tab.login(scene.signatory.username, PASSWORD)

    # The organisation's reporting page lists the quarter's pack, not signed yet.
    tab.open(f"/reporting/organisations/{scene.bank.pk}/")
    tab.see_language()
    tab.see("#owner-name")
    tab.see("#pack-list", ui("Not signed", language))
    tab.click_and_wait("#pack-list a")
    tab.see("#pack-digest", scene.pack.digest)
    tab.see("#pack-controls", ui("Malware protection", language))

    # The PDF in the page's language comes down as an attachment.
    with tab.page.expect_download() as download:
        tab.page.click(f"#pdf-{language}")
    pdf = download.value
    tab.check(pdf.suggested_filename.endswith(f"-{language}.pdf"), pdf.suggested_filename)
    with open(pdf.path(), "rb") as stream:
        tab.check(stream.read(5) == b"%PDF-", "the download is a PDF")

    # Signed after the board meeting, confirmed with the authenticator's code.
    meeting = scene.quarter.last + dt.timedelta(days=14)
    tab.page.fill("#id_meeting_date", meeting.isoformat())
    tab.page.fill("#id_minutes_reference", "BM-2026-Q3")
    tab.page.fill("#id_comment", "KEV remediation confirmed")
    tab.page.fill("#id_code", samples.totp_code(scene.signatory))
    tab.click_and_wait("#sign-form button[type=submit]")
    tab.see("#signed", meeting.isoformat())
    signed = BoardPack.objects.get(pk=scene.pack.pk)
    assert signed.signed_by == scene.signatory
    assert signed.meeting_date == meeting

    # The public verification page says when the board reviewed, nothing more.
    number = Certificate.objects.get(organisation=scene.bank).number
    public = browse("public", language)
    public.open(f"/verify/{number}?lang={language}")
    public.see("#board-reviewed", meeting.isoformat())
    text = public.page_text()
    for private in ("BM-2026-Q3", "KEV remediation confirmed", scene.pack.digest):
        public.check(private not in text, f"{private!r} is on the public page")

    # The other bank's administrator cannot reach the pack or its files.
    other = browse("other bank", language)
    other.login(scene.other_admin.username, PASSWORD)
    other.open(f"/reporting/packs/{scene.pack.pk}/", status=404)
    other.open(f"/reporting/packs/{scene.pack.pk}/pdf/{language}/", status=404)
