"""The applicant's pages as a newcomer meets them, read as HTML: labels instead of stored codes,
what each role is offered, the advice report's words on resubmission, evidence removal."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from mamori.assessments import services
from mamori.assessments.models import Answer
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
