"""CE-JP 2026.1, the corrected edition of CE-JP 2026, against the published Cyber Essentials
requirements and question sets: what it corrects and adds, that CE-JP 2026 stays exactly as
assessments pinned it, and which edition a new or an existing assessment gets."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from django.utils import translation

from mamori.assessments.models import Assessment
from mamori.catalogue import spec
from mamori.catalogue.loader import load_catalogue
from mamori.catalogue.models import Catalogue, Question
from mamori.catalogue.services import (
    bundled_files,
    current_catalogue,
    load_bundled,
    parse_bundled,
    sync_catalogue,
)
from mamori.verification.evaluation import effective_settings
from tests.conftest import World

FILES = {path.name: path for path in bundled_files()}
OLD, NEW = FILES["ce-jp-2026.yaml"], FILES["ce-jp-2026.1.yaml"]
# CE-JP 2026 as assessments pinned it. A catalogue version in use never changes: a change is a new
# edition (this digest fails when someone edits the file instead).
OLD_SHA256 = "9c301f5722164a305d8db6c97c87366fafc3056f3135f63948fec1316634bffd"


@pytest.fixture(scope="module")
def old():
    return load_catalogue(OLD)


@pytest.fixture(scope="module")
def new():
    return load_catalogue(NEW)


def by_id(parsed) -> dict:
    return {question.qid: question for question in parsed.questions}


def rules(parsed, qid: str) -> spec.QuestionSpec:
    question = by_id(parsed)[qid]
    return spec.QuestionSpec.from_spec(
        qid, question.kind, question.scoring, question.required, question.spec, parsed.settings
    )


def both_languages(texts: dict) -> str:
    return texts["ja"] + "\n" + texts["en"]


def test_the_edition_in_use_is_byte_for_byte_unchanged(old):
    assert hashlib.sha256(OLD.read_bytes()).hexdigest() == OLD_SHA256
    assert (old.version, old.valid_from, len(old.questions)) == (
        "CE-JP 2026",
        dt.date(2026, 4, 1),
        96,
    )


def test_the_corrected_edition_is_newer_and_keeps_every_threshold(old, new):
    assert new.version == "CE-JP 2026.1"
    assert new.valid_from == dt.date(2026, 12, 1) > old.valid_from
    assert [parsed.version for parsed in parse_bundled()] == ["CE-JP 2026", "CE-JP 2026.1"]
    added = {name: value for name, value in new.settings.items() if name not in old.settings}
    assert added == {"kev_patch_days": 7, "appeal_working_days": 10}
    assert {name: new.settings[name] for name in old.settings} == old.settings
    # Every question id of the old edition still exists, in the same section (the verification
    # checks and the Plus test cases name questions by id).
    old_sections = {q.qid: s.code for s in old.sections for q in s.questions}
    new_sections = {q.qid: s.code for s in new.sections for q in s.questions}
    assert set(old_sections) - set(new_sections) == {"A8.9"}  # the sandboxing question
    assert all(new_sections[qid] == code for qid, code in old_sections.items() if qid != "A8.9")
    assert sorted(set(new_sections) - set(old_sections)) == [
        "A2.14",
        "A2.15",
        "A2.16",
        "A5.11",
        "A6.10",
        "A6.11",
        "A6.9",
        "A7.21",
        "A7.22",
    ]


def test_cloud_mfa_questions_follow_the_question_sets_numbering(old, new):
    """The question set asks about administrators in A7.16 and users in A7.17; CE-JP 2026 had
    them the other way round. Both stay auto-fail questions."""
    old_q, new_q = by_id(old), by_id(new)
    assert "every administrator of every cloud service" in new_q["A7.16"].text["en"]
    assert "すべての管理者" in new_q["A7.16"].text["ja"]
    assert "every user of every cloud service" in new_q["A7.17"].text["en"]
    assert "すべての利用者" in new_q["A7.17"].text["ja"]
    assert new_q["A7.16"].text == old_q["A7.17"].text
    assert new_q["A7.17"].text == old_q["A7.16"].text
    assert new_q["A7.16"].spec == old_q["A7.17"].spec
    for qid in ("A7.16", "A7.17"):
        assert rules(new, qid).auto_fails("no")
        assert not rules(new, qid).auto_fails("not_applicable")
    auto = {q.qid for q in new.questions if "auto_fail" in q.spec}
    assert auto == {"A6.1", "A6.4", "A6.5", "A7.16", "A7.17"}


def test_an_allow_listed_management_interface_also_needs_a_strong_password(old, new):
    old_a45, new_a45 = by_id(old)["A4.5"], by_id(new)["A4.5"]
    assert "password" not in old_a45.text["en"]
    assert "IP allow-list together with a password" in new_a45.text["en"]
    assert (
        "許可リストとユーザーアクセス制御の要件を満たすパスワードの組み合わせ" in new_a45.text["ja"]
    )
    for field in (new_a45.guidance, new_a45.remediation):
        assert "password" in field["en"]
        assert "パスワード" in field["ja"]


def test_sandboxing_is_no_longer_offered(new):
    a81 = rules(new, "A8.1")
    assert a81.options == ("anti_malware", "allow_listing")
    with pytest.raises(spec.AnswerError) as refused:
        a81.normalise(["sandboxing"])
    assert refused.value.code == "unknown_choice"
    assert a81.is_compliant(["anti_malware"]) is True
    assert not any("sandboxing" in str(q.spec.get("applies_if", "")) for q in new.questions), (
        "a question still depends on a sandboxing answer"
    )
    assert "not accepted" in by_id(new)["A8.1"].guidance["en"]
    assert "認められていない" in by_id(new)["A8.1"].guidance["ja"]


def test_scope_asks_about_accounts_of_third_parties_and_service_providers(new):
    questions = by_id(new)
    assert questions["A2.14"].scoring == "informational"
    assert "managed service providers" in questions["A2.14"].text["en"]
    assert "マネージドサービス事業者" in questions["A2.14"].text["ja"]
    table = {column["id"] for column in questions["A2.15"].spec["columns"]}
    assert {"third_party", "systems", "privilege", "access_route", "mfa", "count"} <= table
    a216 = rules(new, "A2.16")
    assert questions["A2.16"].scoring == "scored"
    assert a216.is_compliant("yes") is True
    assert a216.is_compliant("no") is False
    # Asked only of organisations that said third parties hold accounts.
    for qid in ("A2.15", "A2.16"):
        assert rules(new, qid).applies({"A2.14": "yes"})
        assert not rules(new, qid).applies({"A2.14": "no"})


def test_an_unlock_password_that_is_also_the_login_meets_the_password_rules(new):
    questions = by_id(new)
    assert "A5.11" in questions["A5.7"].guidance["en"]
    assert "A7.12-A7.15" in questions["A5.7"].guidance["en"]
    assert "A7.12～A7.15" in questions["A5.7"].guidance["ja"]
    a511 = questions["A5.11"]
    assert a511.scoring == "scored"
    assert "sign-in password" in a511.text["en"]
    for name in ("{password_min_length}", "{password_min_length_with_mfa}", "{unlock_min_length}"):
        assert name in a511.guidance["en"]
        assert name in a511.guidance["ja"]
    assert rules(new, "A5.11").is_compliant("no") is False
    assert rules(new, "A5.11").is_compliant("not_applicable") is True


def test_known_exploited_fixes_have_a_shorter_deadline_and_the_guidance_says_why(new):
    assert new.settings["kev_patch_days"] == 7 < new.settings["patch_days"] == 14
    a69 = by_id(new)["A6.9"]
    assert a69.scoring == "scored"
    assert "{kev_patch_days}" in a69.text["en"]
    assert "{kev_patch_days}" in a69.text["ja"]
    assert "auto_fail" not in a69.spec  # the scheme's auto-fail list is A6.1, A6.4, A6.5, A7.16/17
    guidance = a69.guidance
    assert "disclosure to exploitation keeps shrinking" in guidance["en"]
    assert "公開から悪用までの期間" in guidance["ja"]
    for language in ("ja", "en"):
        assert "{patch_days}" in guidance[language]
    # The verification agent judges KEV-listed vulnerabilities by this edition's number.
    assert effective_settings(new.settings)["kev_patch_days"] == 7
    assert "{kev_patch_days}" in by_id(new)["A6.8"].guidance["en"]


def test_extended_security_updates_count_as_support_only_while_enrolled(new):
    questions = by_id(new)
    a610 = rules(new, "A6.10")
    assert a610.is_compliant("none") is True
    assert a610.is_compliant("all_enrolled") is True
    assert a610.is_compliant("some_not_enrolled") is False
    assert "ESU" in questions["A6.10"].text["en"]
    assert "A6.1" in both_languages(questions["A6.10"].guidance)
    assert "A6.10" in both_languages(questions["A6.1"].guidance)
    assert rules(new, "A6.11").applies({"A6.10": "all_enrolled"})
    assert not rules(new, "A6.11").applies({"A6.10": "none"})
    assert {c["id"] for c in questions["A6.11"].spec["columns"]} >= {"product", "esu_ends"}


def test_cloud_services_without_mfa_are_listed(new):
    questions = by_id(new)
    assert "does not offer MFA" in questions["A7.21"].text["en"]
    a722 = rules(new, "A7.22")
    assert questions["A7.22"].kind == "inventory"
    assert a722.applies({"A7.21": "yes"})
    assert not a722.applies({"A7.21": "no"})
    row = a722.normalise(
        [
            {
                "service_name": "Fictitious Forms",
                "provider": "Example KK",
                "admin_accounts": "yes",
                "protection": "lockout after 5 failures, 14 characters",
                "users": "12",
            }
        ]
    )
    assert row[0]["users"] == 12
    with pytest.raises(spec.AnswerError) as refused:
        a722.normalise([{"service_name": "No provider"}])
    assert refused.value.code == "cell_required"


# --- Which edition an assessment gets ------------------------------------------------------------


@pytest.mark.django_db
def test_new_assessments_get_the_newest_edition_in_force_and_old_ones_keep_theirs():
    # Before the correction shipped, CE-JP 2026 was the only edition: an assessment pinned it.
    # (The test database starts with every bundled edition: back to before the correction.)
    Catalogue.objects.all().delete()
    older, _outcome = sync_catalogue(load_catalogue(OLD))
    world = World()
    pinned = world.start()
    assert pinned.catalogue == older

    outcomes = {catalogue.version: outcome for catalogue, outcome in load_bundled()}
    assert outcomes == {"CE-JP 2026": "unchanged", "CE-JP 2026.1": "created"}
    newer = Catalogue.objects.get(version="CE-JP 2026.1")
    assert current_catalogue(dt.date(2026, 11, 30)) == older
    assert current_catalogue(dt.date(2026, 12, 1)) == newer

    fresh = world.start()
    assert fresh.catalogue == newer
    assert Assessment.objects.get(pk=pinned.pk).catalogue == older
    # Each reads its own edition's question A7.16.
    with translation.override("en"):
        assert "user" in Question.objects.get(catalogue=older, qid="A7.16").text
        assert "administrator" in Question.objects.get(catalogue=newer, qid="A7.16").text
        kev = Question.objects.get(catalogue=newer, qid="A6.9").text
    assert "within 7 days of release" in kev
    # The whole corrected edition can be answered compliant and submitted.
    submitted = world.submitted()
    assert (submitted.catalogue, submitted.state) == (newer, "submitted")
    assert submitted.answers.count() == Question.objects.filter(catalogue=newer).count()
