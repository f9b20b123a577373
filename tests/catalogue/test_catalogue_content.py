"""The bundled requirement catalogues, each edition: their sections, questions, auto-fail rules and
every threshold from the scheme's requirements, in Japanese and English. What the corrected
edition CE-JP 2026.1 changed is in test_catalogue_corrections.py."""

from __future__ import annotations

import io
import re
import string

import pytest
from django.core.management import call_command
from django.utils import translation

from mamori.catalogue import spec
from mamori.catalogue.loader import load_catalogue
from mamori.catalogue.models import Question
from mamori.catalogue.services import bundled_files

# Per edition: its version, first day in force, and the cloud-MFA questions (CE-JP 2026 had the
# question set's A7.16 and A7.17 the other way round; 2026.1 follows it).
EDITIONS = {
    "ce-jp-2026.yaml": ("CE-JP 2026", "2026-04-01", {"users": "A7.16", "administrators": "A7.17"}),
    "ce-jp-2026.1.yaml": (
        "CE-JP 2026.1",
        "2026-12-01",
        {"administrators": "A7.16", "users": "A7.17"},
    ),
}
FILES = {path.name: path for path in bundled_files()}
SECTIONS = {
    "A1": "organisation",
    "A2": "scope",
    "A3": "insurance",
    "A4": "firewalls",
    "A5": "secure_configuration",
    "A6": "security_update_management",
    "A7": "user_access_control",
    "A8": "malware_protection",
    "A9": "backups",
    "A10": "governance",
}
AUTO_FAIL = {"A6.1", "A6.4", "A6.5", "A7.16", "A7.17"}
# Every threshold and timer of REQUIREMENTS-FACTS.md, as catalogue data.
THRESHOLDS = {
    "patch_days": 14,
    "cvss_threshold": 7.0,
    "unlock_min_length": 6,
    "throttle_guesses": 10,
    "throttle_minutes": 5,
    "lockout_attempts": 10,
    "password_min_length": 12,
    "password_min_length_with_blocklist": 8,
    "password_min_length_with_mfa": 8,
    "certificate_months": 12,
    "completion_months": 6,
    "clarification_working_days": 2,
    "resubmission_working_days": 2,
}


def test_every_bundled_file_is_an_edition_tested_here():
    assert set(FILES) == set(EDITIONS)


@pytest.fixture(scope="module", params=list(EDITIONS))
def edition(request):
    return request.param


@pytest.fixture(scope="module")
def parsed(edition):
    return load_catalogue(FILES[edition])


@pytest.fixture(scope="module")
def questions(parsed):
    return {question.qid: question for question in parsed.questions}


def rules_of(question, settings) -> spec.QuestionSpec:
    return spec.QuestionSpec.from_spec(
        question.qid, question.kind, question.scoring, question.required, question.spec, settings
    )


def test_the_bundled_catalogue_validates(parsed, edition):
    version, valid_from, _mfa = EDITIONS[edition]
    assert parsed.version == version
    assert parsed.valid_from.isoformat() == valid_from
    assert parsed.title["ja"].endswith(version)
    assert parsed.title["en"].endswith(version)
    out = io.StringIO()
    call_command("catalogue", "check", str(FILES[edition]), stdout=out)
    assert out.getvalue().strip() == (
        f"{FILES[edition]}: ok: {version}, 10 sections, {len(parsed.questions)} questions"
    )


def test_sections_carry_the_schemes_controls(parsed):
    assert {section.code: section.control for section in parsed.sections} == SECTIONS
    assert [section.code for section in parsed.sections] == list(SECTIONS)
    for control in spec.FIVE_CONTROLS:
        section = next(s for s in parsed.sections if s.control == control)
        assert sum(q.scoring == "scored" for q in section.questions) >= 5, control
    # Insurance is asked, never scored.
    insurance = next(s for s in parsed.sections if s.code == "A3")
    assert {q.scoring for q in insurance.questions} == {"informational"}
    for section in parsed.sections:
        assert section.title["ja"]
        assert section.title["en"]


def test_every_question_has_id_kind_scoring_guidance_and_texts(parsed):
    kinds = set()
    for section in parsed.sections:
        for number, question in enumerate(section.questions, start=1):
            assert question.qid == f"{section.code}.{number}"
            assert question.kind in spec.KINDS
            assert question.scoring in spec.SCORINGS
            kinds.add(question.kind)
            for field in ("text", "guidance"):
                texts = getattr(question, field)
                assert texts["ja"].strip(), (question.qid, field)
                assert texts["en"].strip(), (question.qid, field)
            if question.scoring == "scored":
                assert question.remediation["ja"].strip(), question.qid
                assert question.remediation["en"].strip(), question.qid
                assert question.spec.get("compliant"), question.qid
            else:
                assert "auto_fail" not in question.spec, question.qid
            # Japanese text is written in Japanese, English text in English.
            assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", question.text["ja"]), question.qid
            assert not re.search(r"[\u3040-\u30ff]", question.text["en"]), question.qid
    assert kinds == set(spec.KINDS)


def test_auto_fail_only_where_the_scheme_has_it(parsed, questions, edition):
    auto = {qid for qid, question in questions.items() if "auto_fail" in question.spec}
    assert auto == AUTO_FAIL
    for qid in AUTO_FAIL:
        question = questions[qid]
        rules = rules_of(question, parsed.settings)
        assert rules.auto_fails("no"), qid
        assert not rules.auto_fails("yes"), qid
        reason = question.spec["auto_fail"]["reason"]
        assert reason["ja"].strip()
        assert reason["en"].strip()
    assert "end-of-life" in questions["A6.1"].text["en"]
    assert "{patch_days}" in questions["A6.4"].text["en"]
    assert "{patch_days}" in questions["A6.5"].text["en"]
    mfa = EDITIONS[edition][2]
    assert (
        "every administrator of every cloud service" in questions[mfa["administrators"]].text["en"]
    )
    assert "every user of every cloud service" in questions[mfa["users"]].text["en"]
    assert "すべての管理者" in questions[mfa["administrators"]].text["ja"]
    assert "すべての利用者" in questions[mfa["users"]].text["ja"]


def test_every_threshold_is_a_setting_with_the_schemes_value(parsed):
    for name, value in THRESHOLDS.items():
        assert parsed.settings[name] == value, name


@pytest.mark.parametrize(
    ("qid", "setting", "compliant", "non_compliant"),
    [
        ("A5.7", "$unlock_min_length", 6, 5),
        ("A5.9", "$throttle_guesses", 10, 11),
        ("A5.10", "$lockout_attempts", 10, 11),
        ("A7.10", "$throttle_guesses", 10, 11),
        ("A7.11", "$lockout_attempts", 10, 11),
        ("A7.13", "$password_min_length_with_mfa", 8, 7),
        ("A7.14", "$password_min_length_with_blocklist", 8, 7),
        ("A7.15", "$password_min_length", 12, 11),
    ],
)
def test_number_rules_use_the_thresholds(parsed, questions, qid, setting, compliant, non_compliant):
    question = questions[qid]
    ((_operator, operand),) = question.spec["compliant"].items()
    assert operand == setting
    rules = rules_of(question, parsed.settings)
    assert rules.is_compliant(compliant) is True
    assert rules.is_compliant(non_compliant) is False


def test_the_fourteen_day_rule_and_cvss_threshold_are_in_the_questions(questions):
    for qid in ("A6.4", "A6.5"):
        for language in ("ja", "en"):
            text = questions[qid].text[language]
            assert "{patch_days}" in text, (qid, language)
            assert "{cvss_threshold}" in text, (qid, language)
    assert "{throttle_minutes}" in questions["A5.9"].text["en"]


def test_scope_and_asset_inventory_questions(parsed, questions):
    assert parsed.scope == {"kind_question": "A2.1", "description_question": "A2.2"}
    assert [o["value"] for o in questions["A2.1"].spec["options"]] == ["whole", "subset"]
    assert questions["A2.2"].kind == "text"

    def columns(qid):
        assert questions[qid].kind == "inventory", qid
        return {column["id"] for column in questions[qid].spec["columns"]}

    # End-user devices by OS and version, servers, network devices by make and model, and
    # cloud services including shadow IT.
    assert {"device_type", "os", "os_version", "count"} <= columns("A2.4")
    assert {"role", "os", "os_version", "count"} <= columns("A2.5")
    assert {"make", "model", "firmware_version", "count"} <= columns("A2.6")
    assert {"service_name", "provider", "sanctioned", "mfa_available"} <= columns("A2.7")
    assert "shadow IT" in questions["A2.7"].text["en"]
    assert "シャドーIT" in questions["A2.7"].text["ja"]


def test_backups_and_board_ownership_are_covered(parsed):
    by_code = {section.code: section for section in parsed.sections}
    assert any(q.scoring == "scored" for q in by_code["A9"].questions)
    assert "board" in by_code["A10"].questions[0].text["en"].lower()
    assert "取締役会" in by_code["A10"].questions[0].text["ja"]


def test_placeholders_name_only_existing_settings(parsed):
    formatter = string.Formatter()

    def texts(question):
        for field in (question.text, question.guidance, question.remediation):
            yield from field.values()
        yield from (question.spec.get("auto_fail") or {}).get("reason", {}).values()

    for question in parsed.questions:
        for text in texts(question):
            names = {name for _, name, _, _ in formatter.parse(text) if name}
            assert names <= set(parsed.settings), (question.qid, names)


@pytest.mark.django_db
@pytest.mark.parametrize("language", ["ja", "en"])
def test_loaded_questions_read_with_thresholds_filled_in(catalogue, language):
    questions = {q.qid: q for q in Question.objects.filter(catalogue=catalogue)}
    assert len(questions) == len(load_catalogue(FILES[catalogue.source_name]).questions)
    with translation.override(language):
        for question in questions.values():
            for text in (question.text, question.guidance, question.remediation):
                assert "{" not in text, question.qid
            assert question.text.strip()
            assert question.guidance.strip()
        patch = questions["A6.4"].text
        reason = questions["A6.4"].auto_fail_reason
    if language == "en":
        assert "within 14 days" in patch
        assert "7.0" in patch
        assert "14 days" in reason
    else:
        assert "14日以内" in patch
        assert "7.0" in patch
        assert "14日以内" in reason
