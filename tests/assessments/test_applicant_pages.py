"""The applicant's pages as a newcomer meets them, read as HTML: labels instead of stored codes,
what each role is offered, the advice report's words on resubmission, evidence removal."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import formats, timezone, translation

from mamori.assessments import services
from mamori.assessments.models import Answer, Assessment, Attachment, Outcome, State, Verdict
from mamori.audit.models import AuditEvent
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

DEVICE_ROW = {
    "device_type": "laptop",
    "os": "Windows 11",
    "os_version": "24H2",
    "ownership": "byod",
    "remote_use": "yes",
    "count": 3,
}
CLOUD_ROW = {
    "service_name": "Mail",
    "provider": "Example Cloud",
    "service_model": "saas",
    "admin_managed": "yes",
    "sanctioned": "no",
    "mfa_available": "yes",
}
# What a reader sees in each language for the stored codes above.
SHOWN = {
    "en": ["Laptop", "Personally owned (BYOD)", "Yes", "SaaS", "No"],
    "ja": ["ノートPC", "個人所有（BYOD）", "はい", "SaaS", "いいえ"],
}
CODES = {"laptop", "byod", "yes", "no", "saas"}


def speaking(client, language: str):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = language
    return client


def save(world, assessment, qid: str, value) -> None:
    current = Answer.objects.filter(assessment=assessment, question__qid=qid).first()
    services.save_answer(
        world.admin,
        world.access(world.admin),
        assessment.pk,
        qid,
        value,
        current.version if current else 0,
    )


def inventory_cells(body: str) -> list[str]:
    tables = re.findall(r'<table class="inventory">(.*?)</table>', body, re.S)
    assert tables, "no inventory table on the page"
    return [cell.strip() for table in tables for cell in re.findall(r"<td>(.*?)</td>", table, re.S)]


@pytest.mark.parametrize("language", ["ja", "en"])
def test_read_only_inventory_shows_labels_to_applicant_and_assessor(world, language):
    assessment = world.start()
    world.answer_all(assessment)
    save(world, assessment, "A2.4", [DEVICE_ROW])
    save(world, assessment, "A2.7", [CLOUD_ROW])
    world.sign(assessment)
    services.submit(world.admin, world.access(world.admin), assessment.pk)
    assessment.refresh_from_db()

    section = reverse("assessments:section", args=[assessment.pk, "A2"])
    review = reverse("assessments:review", args=[assessment.pk])
    pages = {
        "applicant": speaking(client_for(world.admin), language).get(section),
        "assessor": speaking(client_for(assessment.assessor), language).get(review),
    }
    for who, page in pages.items():
        assert page.status_code == 200, who
        cells = inventory_cells(page.content.decode())
        for label in SHOWN[language]:
            assert label in cells, f"{who} ({language}) does not see {label!r}: {cells}"
        assert not CODES & set(cells), f"{who} ({language}) sees stored codes: {cells}"
        # Free text and numbers are shown as typed.
        assert {"Windows 11", "24H2", "3", "Mail", "Example Cloud"} <= set(cells)


def test_inventory_error_names_the_column_in_japanese(world):
    assessment = world.start()
    response = speaking(client_for(world.admin), "ja").post(
        reverse("assessments:answer", args=[assessment.pk, "A2.4"]),
        {"row-0-device_type": "laptop", "row-0-os": "Ubuntu", "version": "0"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 422
    body = response.content.decode()
    assert "OSバージョン（エディション・ビルド）" in body
    assert "os_version" not in body


# --- Evidence files can be removed until the assessor has them ------------------------------------


@pytest.fixture
def evidence_root(settings, tmp_path):
    root = tmp_path / "private"
    root.mkdir()
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": root, "base_url": None},
        },
    }
    return root


def upload(world, assessment, name: str = "firewall-policy.txt"):
    return services.add_attachment(
        world.admin,
        world.access(world.admin),
        assessment.pk,
        SimpleUploadedFile(name, b"default deny inbound\n"),
        "A4.2",
    )


def delete_url(attachment) -> str:
    return reverse("assessments:delete_evidence", args=[attachment.assessment_id, attachment.pk])


def test_evidence_of_a_draft_can_be_removed(
    world, evidence_root, django_capture_on_commit_callbacks
):
    assessment = world.start()
    attachment = upload(world, assessment)
    stored_file = evidence_root / attachment.file.name
    assert stored_file.exists()
    evidence_page = reverse("assessments:evidence", args=[assessment.pk])
    # Contributors add evidence, so they may remove it too.
    client = speaking(client_for(world.contributor), "en")
    assert f'action="{delete_url(attachment)}"' in client.get(evidence_page).content.decode()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(delete_url(attachment))
    assert response.status_code == 302
    assert response.url == evidence_page
    assert not Attachment.objects.filter(pk=attachment.pk).exists()
    assert not stored_file.exists(), "the file stayed on disk"
    event = AuditEvent.objects.get(action="evidence.deleted", object_id=str(assessment.pk))
    assert event.actor_id == world.contributor.pk
    assert event.details == {
        "attachment": attachment.pk,
        "sha256": attachment.sha256,
        "size": attachment.size,
        "question": "A4.2",
    }
    page = client.get(evidence_page).content.decode()
    assert "The evidence file firewall-policy.txt was removed." in page
    assert "firewall-policy.txt</a>" not in page


def test_evidence_the_assessor_received_stays(world, evidence_root):
    assessment = world.start()
    world.answer_all(assessment)
    attachment = upload(world, assessment)
    stored_file = evidence_root / attachment.file.name
    signatory = speaking(client_for(world.signatory), "en")
    refused = signatory.post(delete_url(attachment), follow=True)  # not a role that adds files
    assert "You cannot remove evidence from this assessment." in refused.content.decode()
    world.sign(assessment)
    services.submit(world.admin, world.access(world.admin), assessment.pk)

    admin = speaking(client_for(world.admin), "en")
    page = admin.get(reverse("assessments:evidence", args=[assessment.pk])).content.decode()
    assert "firewall-policy.txt</a>" in page
    assert delete_url(attachment) not in page  # no button that would be refused
    refused = admin.post(delete_url(attachment), follow=True)
    assert "The assessor has received this file" in refused.content.decode()
    assert client_for(world.outsider).post(delete_url(attachment)).status_code == 404
    assert client_for(world.admin).get(delete_url(attachment)).status_code == 405
    assert Attachment.objects.filter(pk=attachment.pk).exists()
    assert stored_file.exists()
    assert not AuditEvent.objects.filter(action="evidence.deleted").exists()


# --- The advice report's next step follows the one-resubmission rule ------------------------------


def advice_text(world, assessment, round_: int) -> str:
    client = speaking(client_for(world.admin), "en")
    page = client.get(reverse("assessments:advice", args=[assessment.pk, round_]))
    assert page.status_code == 200
    match = re.search(r'<p id="advice-next-step">(.*?)</p>', page.content.decode(), re.S)
    assert match, "no next step on the advice report"
    return " ".join(match.group(1).split())


def test_advice_report_says_what_comes_next_at_each_point(world):
    failed = world.failed("A6.4")
    with translation.override("en"):
        due = formats.date_format(failed.feedback_due)
    first = advice_text(world, failed, 1)
    assert first.startswith(f"Fix the requirements below and resubmit once, by {due}.")

    # Resubmitted: the first report no longer tells the applicant to start again.
    save(world, failed, "A6.4", "yes")
    world.sign(failed)
    services.resubmit(world.admin, world.access(world.admin), failed.pk)
    failed.refresh_from_db()
    assert failed.state == State.RESUBMITTED
    first = advice_text(world, failed, 1)
    assert "resubmitted on" in first
    assert "new assessment" not in first

    # The resubmission fails as well: now, and only now, a new assessment is the way on.
    access = world.access(world.assessor)
    services.mark_answer(world.assessor, access, failed.pk, "A6.4", Verdict.NON_COMPLIANT, "no")
    services.decide(world.assessor, access, failed.pk, Outcome.FAIL, "still failing")
    assert "new assessment" in advice_text(world, failed, 2)
    assert "resubmitted on" in advice_text(world, failed, 1)


def test_advice_report_after_the_window_closed(world):
    failed = world.failed("A6.4")
    Assessment.objects.filter(pk=failed.pk).update(
        feedback_due=timezone.localdate() - dt.timedelta(days=1)
    )
    failed.refresh_from_db()
    with translation.override("en"):
        due = formats.date_format(failed.feedback_due)
    text = advice_text(world, failed, 1)
    assert text == (
        f"The assessment was not resubmitted by {due}, when the window closed. "
        "Fix the requirements below, then start a new assessment."
    )


@pytest.mark.parametrize(
    ("language", "level"),
    [("en", "Cyber-Essentials-style"), ("ja", "サイバー・エッセンシャルズ型")],
)
def test_the_level_is_named_as_a_style_of_cyber_essentials_in_both_languages(
    world, language, level
):
    assessment = world.start()
    page = speaking(client_for(world.admin), language).get(
        reverse("assessments:detail", args=[assessment.pk])
    )
    assert f"<dd>{level}</dd>" in page.content.decode()


def test_add_a_row_without_javascript_saves_what_was_typed(world):
    """The plain form's "Add a row" once answered 200 and saved nothing: now it saves the rows
    typed so far and shows the table again with a blank row more."""
    assessment = world.start()
    client = speaking(client_for(world.admin), "en")
    cells = {f"row-0-{column}": str(value) for column, value in DEVICE_ROW.items()}
    response = client.post(
        reverse("assessments:answer", args=[assessment.pk, "A2.4"]),
        {**cells, "version": "0", "add_row": "1"},
    )
    section = reverse("assessments:section", args=[assessment.pk, "A2"])
    assert response.status_code == 302
    assert response.url == f"{section}?add_row=A2.4#q-A2.4"
    answer = Answer.objects.get(assessment=assessment, question__qid="A2.4")
    assert answer.value == [DEVICE_ROW]
    page = client.get(response.url).content.decode()
    form = re.search(r'<form id="q-A2\.4".*?</form>', page, re.S).group(0)
    form = re.sub(r"<template.*?</template>", "", form, flags=re.S)
    assert 'name="row-0-os" value="Windows 11"' in form
    # The saved row, the blank row that always follows, and the one asked for.
    assert set(re.findall(r'name="row-(\d+)-os"', form)) == {"0", "1", "2"}
    assert f'name="version" value="{answer.version}"' in form
