"""One date and one date-time format per language: representative pages rendered in Japanese
and in English show written dates only (2026年12月7日 20:53 / 7 Dec 2026 20:53), never an ISO
date beside them, an "a.m."/"p.m." or the double full stop such a time made at a sentence's end.
"""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import formats, timezone, translation

from mamori.assessments import services
from mamori.certificates.models import Certificate
from mamori.verification.models import Host
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

ISO_DATE = re.compile(r"(?<![\w-])\d{4}-\d{2}-\d{2}(?![\w-])")
DOUBLE_STOP = re.compile(r"(?<!\.)\.\.(?!\.)")
MERIDIEM = re.compile(r"\b[ap]\.m\.", re.I)
WRITTEN_DATE = {
    "ja": re.compile(r"\d{4}年\d{1,2}月\d{1,2}日"),
    "en": re.compile(r"\b\d{1,2} (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4}\b"),
}


class VisibleText(HTMLParser):
    """The text a reader sees: no tags, attributes, scripts or styles."""

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "template"):
            self._hidden += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style", "template"):
            self._hidden -= 1

    def handle_data(self, data):
        if not self._hidden:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = VisibleText()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def test_the_formats_per_language():
    day = dt.date(2026, 12, 7)
    moment = timezone.make_aware(dt.datetime(2026, 12, 7, 20, 53))
    expected = {
        "ja": ("2026年12月7日", "2026年12月7日 20:53"),
        "en": ("7 Dec 2026", "7 Dec 2026 20:53"),
    }
    for language, (date, date_time) in expected.items():
        with translation.override(language):
            assert formats.date_format(day) == date
            assert formats.localize(moment) == date_time
            assert formats.date_format(moment, "DATETIME_FORMAT") == date_time
            # The short formats are the same: a page never has two spellings of a date.
            assert formats.date_format(day, "SHORT_DATE_FORMAT") == date


@pytest.fixture
def pages(world, settings, tmp_path):
    """Paths that show dates and date-times, with the client that may read each."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path, "base_url": None},
        },
    }
    # A draft with a signed declaration ("Signed by … at <date-time>.") and an evidence file.
    draft = world.start()
    world.answer_all(draft)
    services.add_attachment(
        world.admin,
        world.access(world.admin),
        draft.pk,
        SimpleUploadedFile("policy.txt", b"patch within 14 days\n"),
        "A6.4",
    )
    world.sign(draft)
    # A failed assessment: decision date-time, resubmission date, advice report.
    failed = world.failed("A6.4")
    # A revoked certificate of a passed one: issued, expires and revoked dates.
    passed = world.passed()
    certificate = Certificate.objects.get(assessment=passed)
    Certificate.objects.filter(pk=certificate.pk).update(revoked_at=timezone.now())
    # A host seen by the agent (first and last seen), as the hosts pages list it.
    host = Host.objects.create(
        organisation=world.bank, hostname="web-01", machine_id="a" * 32, os_pretty_name="Debian"
    )
    admin, assessor = client_for(world.admin), client_for(world.assessor)
    return [
        (admin, "/"),
        (admin, reverse("assessments:list")),
        (admin, reverse("assessments:detail", args=[draft.pk])),
        (admin, reverse("assessments:declaration", args=[draft.pk])),
        (admin, reverse("assessments:evidence", args=[draft.pk])),
        (admin, reverse("assessments:detail", args=[failed.pk])),
        (admin, reverse("assessments:advice", args=[failed.pk, 1])),
        (admin, reverse("organisations:members", args=[world.bank.pk])),
        (admin, reverse("certificates:detail", args=[certificate.number])),
        (admin, reverse("verification:list")),
        (admin, reverse("verification:detail", args=[host.pk])),
        (assessor, reverse("assessments:review", args=[failed.pk])),
        (assessor, reverse("assessments:queue") + "?show=all"),
    ]


@pytest.mark.parametrize("language", ["ja", "en"])
def test_pages_show_one_date_format(pages, language):
    dated = 0
    for client, path in pages:
        client.defaults["HTTP_ACCEPT_LANGUAGE"] = language
        response = client.get(path)
        assert response.status_code == 200, path
        text = visible_text(response.content.decode())
        assert not ISO_DATE.search(text), f"{path} ({language}): {ISO_DATE.search(text)[0]}"
        assert not DOUBLE_STOP.search(text), f"{path} ({language}): '..' in {text[:2000]}"
        assert not MERIDIEM.search(text), f"{path} ({language}): a.m./p.m. in the page"
        dated += bool(WRITTEN_DATE[language].search(text))
    # Not vacuous: the pages do show dates, written the language's way.
    assert dated >= len(pages) - 2, f"only {dated} of {len(pages)} pages show a written date"
