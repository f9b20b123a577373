"""The scheme end to end in a real browser: applicant → declaration → submission → assessor's
marks → decision → certificate → public verification, and fail → advice → resubmission.

Every step a person takes on screen is done by clicking in Chromium (htmx autosave and marking
included); only the long tail of answers and marks goes through the real service layer, so the
tests stay short without bypassing any check the pages would apply.
"""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.utils import translation
from pypdf import PdfReader

from mamori.assessments import scoring, services
from mamori.assessments.models import Answer, Assessment, Decision, Mark, State, Verdict
from mamori.audit.services import verify_trail
from mamori.catalogue.models import Question
from mamori.certificates.models import Certificate
from mamori.organisations.access import Access
from tests.browser.conftest import ui
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Text that comes from the catalogue YAML, not from the .po file: it is in the page's language
# whatever state the translations are in, so it proves which language the page was built in.
CATALOGUE_TEXT = {
    "ja": {
        "A2.1 whole": "組織全体",
        "A6.4": "OSとファームウェアの修正（パッチ）",
        "A6.4 auto-fail": "深刻度の高いOS・ファームウェアの修正が14日以内に適用されていない",
        "A6.4 remediation": "ベンダーの修正情報を毎日確認する担当者を決め",
    },
    "en": {
        "A2.1 whole": "The whole organisation",
        "A6.4": "Are all operating system and firmware fixes",
        "A6.4 auto-fail": "High-severity operating system or firmware fixes are not applied",
        "A6.4 remediation": "Name someone to check vendor fix announcements daily",
    },
}
# The autosave and marking status, named in the issue in both languages.
SAVED = {"ja": "保存しました", "en": "Saved"}
ORGANISATION_NAMES = {"ja": "テスト銀行", "en": "Test Bank"}
BODY_NAMES = {"ja": "認定機関A", "en": "Body A"}


def q(qid: str) -> str:
    """The selector of a question's block (ids hold a dot, which CSS would read as a class)."""
    return f"[id='q-{qid}']"


@pytest.fixture
def people(world):
    """The shared personas, with passwords so they can sign in through the real form."""
    for user in (world.admin, world.signatory, world.assessor, world.assessor2):
        user.set_password(PASSWORD)
        user.save(update_fields=["password"])
    return world


# --- steps, each done on screen --------------------------------------------------------------


def start_assessment(tab, world) -> Assessment:
    tab.open("/assessments/")
    tab.click_and_wait("a[href='/assessments/new/']")
    tab.page.select_option("#id_certification_body", label=BODY_NAMES[tab.language])
    tab.click_and_wait("main form button[type=submit]")
    assessment = Assessment.objects.get(organisation=world.bank)
    tab.check(
        tab.page.url.endswith(f"/assessments/{assessment.pk}/sections/A2/"),
        "starting should lead to the scope section",
    )
    tab.see_message("Assessment started. Begin with the scope.")
    assert assessment.certification_body_id == world.body.pk
    assert assessment.state == State.DRAFT
    return assessment


def answer(tab, assessment, section: str, qid: str, value: str) -> None:
    """Pick an option on the section page and wait for htmx's autosave to confirm it."""
    path = f"/assessments/{assessment.pk}/sections/{section}/"
    if not tab.page.url.endswith(path):
        tab.open(path)
    tab.page.locator(f"{q(qid)} input[name=value][value='{value}']").check()
    tab.see(f"{q(qid)} .status.saved", SAVED[tab.language])
    stored = Answer.objects.get(assessment=assessment, question__qid=qid)
    assert stored.value == value, f"{qid} stored {stored.value!r}, the page sent {value!r}"


def sign_declaration(tab, assessment, status: str = "info") -> None:
    """Sign on the declaration page; ``status`` is the notice before signing (``warning`` when
    answers changed after an earlier signature)."""
    tab.open(f"/assessments/{assessment.pk}/declaration/")
    tab.see_class("#declaration-status", status)
    tab.page.fill("#id_name", "Bob Board")
    tab.page.fill("#id_title", "取締役" if tab.language == "ja" else "Director")
    tab.page.check("#id_confirm")
    tab.click_and_wait("form:has(#id_name) button[type=submit]")
    tab.see_message("The declaration is signed.")
    assessment.refresh_from_db()
    assert assessment.declaration_valid
    assert assessment.declared_name == "Bob Board"


def submit(tab, assessment) -> None:
    tab.open(f"/assessments/{assessment.pk}/declaration/")
    tab.see_class("#declaration-status", "success")
    question = (
        "Submit the assessment to the certification body? Answers cannot be changed afterwards."
    )
    tab.confirm_and_wait("#submit-assessment", ui(question, tab.language))
    tab.see_message("Submitted. The certification body will review it.")
    tab.see_class("#assessment-state", State.SUBMITTED)
    assessment.refresh_from_db()
    assert assessment.state == State.SUBMITTED
    assert assessment.assessor is not None


def open_review(browse, assessment, language: str):
    """The assigned assessor signs in with password and TOTP and finds the submission through
    the review queue."""
    assessor = assessment.assessor
    tab = browse(assessor.username, language)
    tab.login(assessor.username, PASSWORD)
    tab.pass_mfa(assessor)
    tab.click_and_wait("header nav a[href='/review/']")
    tab.see("h1", ui("Review queue", language))
    tab.see("#queue", assessment.reference)
    tab.see("#queue", ORGANISATION_NAMES[language])
    tab.click_and_wait(f"#queue a[href='/assessments/{assessment.pk}/review/']")
    tab.see("h1", ORGANISATION_NAMES[language])
    return tab


def mark(tab, assessment, qid: str, verdict: str, comment: str = "") -> None:
    """Mark one answer through the htmx form on the review page."""
    form = f"{q(qid)} form.mark-form"
    tab.page.locator(f"{form} input[name=verdict][value={verdict}]").check()
    tab.page.fill(f"{form} textarea[name=comment]", comment)
    tab.page.locator(f"{form} button[type=submit]").click()
    tab.see(f"{q(qid)} .status.saved", SAVED[tab.language])
    stored = Mark.objects.get(
        answer__assessment=assessment, answer__question__qid=qid, round=assessment.round
    )
    assert (stored.verdict, stored.comment) == (verdict, comment)


def mark_the_rest(assessment, skip: set[str]) -> None:
    """The remaining scored answers, through the real service: compliant unless they auto-fail."""
    assessment.refresh_from_db()
    assessor = assessment.assessor
    access = Access.for_user(assessor)
    snapshot = services.Snapshot.load(assessment)
    auto = set(scoring.auto_failures(snapshot.specs, snapshot.values))
    for question in snapshot.questions:
        if question.qid in skip or not question.is_scored or question.qid not in snapshot.answers:
            continue
        failing = question.qid in auto
        services.mark_answer(
            assessor,
            access,
            assessment.pk,
            question.qid,
            Verdict.NON_COMPLIANT if failing else Verdict.COMPLIANT,
            "fails automatically" if failing else "",
        )


def decide(tab, assessment, outcome: str, summary: str) -> None:
    tab.open(f"/assessments/{assessment.pk}/review/")  # the decision form reflects all marks
    tab.page.check(f"#decision input[name=outcome][value={outcome}]")
    tab.page.fill("#decision #id_summary", summary)
    tab.click_and_wait("#record-decision")
    if outcome == "pass":
        tab.see_message("Passed. The certificate has been issued.")
        tab.see_class("#assessment-state", State.PASSED)
    else:
        tab.see_message("Failed. The applicant receives the advice report.")
        tab.see_class("#assessment-state", State.FAILED)


def search_register(tab, query: str, number: str) -> None:
    tab.open("/register/")
    tab.page.fill("#q", query)
    tab.click_and_wait("form[role=search] button[type=submit]")
    tab.see("#register", number)
    tab.see("#register", ORGANISATION_NAMES[tab.language])


# --- the flows -------------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["ja", "en"])
def test_applicant_to_certificate_and_public_verification(browse, people, language):
    world = people
    text = CATALOGUE_TEXT[language]
    admin = browse("alice", language)
    admin.login("alice", PASSWORD)
    admin.see_language()
    # The production cookie flags stay on: Chromium accepts Secure cookies from loopback http.
    session = {c["name"]: c for c in admin.context.cookies()}["sessionid"]
    assert (session["secure"], session["httpOnly"], session["sameSite"]) == (True, True, "Lax")

    assessment = start_assessment(admin, world)
    admin.see_language()
    admin.see(f"{q('A2.1')} label", text["A2.1 whole"])
    answer(admin, assessment, "A2", "A2.1", "whole")
    answer(admin, assessment, "A6", "A6.4", "yes")
    admin.see(q("A6.4"), text["A6.4"])
    admin.absent(f"{q('A6.4')} p.error")
    world.answer_all(assessment)

    admin.open(f"/assessments/{assessment.pk}/precheck/")
    admin.see("p#auto-failures", ui("None. No answer triggers an automatic fail.", language))
    admin.absent("ul#unanswered")

    signatory = browse("bob", language)
    signatory.login("bob", PASSWORD)
    sign_declaration(signatory, assessment)
    submit(admin, assessment)

    reviewer = open_review(browse, assessment, language)
    mark(reviewer, assessment, "A6.4", Verdict.COMPLIANT)
    mark_the_rest(assessment, skip={"A6.4"})
    decide(reviewer, assessment, "pass", "全項目に適合" if language == "ja" else "All compliant")

    certificate = Certificate.objects.get(assessment=assessment)
    reviewer.see("#certificate-link", certificate.number)
    admin.open(f"/assessments/{assessment.pk}/")
    admin.see_class("#assessment-state", State.PASSED)
    admin.see("#certificate-link", certificate.number)

    public = browse("public", language)
    public.open(f"/verify/{certificate.number}")
    public.see_language()
    public.see_class("#verify-result", "valid")
    public.see("#verify-result", certificate.number)
    public.see("#certificate-status", ui("Valid", language))
    public.see("main", ORGANISATION_NAMES["ja"])
    public.see("main", certificate.scope_text)
    for name in ("Test Bank", "テスト銀行"):
        search_register(public, name, certificate.number)
    public.open("/register/?q=Other+Bank")
    public.absent("#register")

    assert verify_trail() is None


def test_fail_advice_resubmit_then_pass(browse, people):
    world, language = people, "ja"
    text = CATALOGUE_TEXT[language]
    admin = browse("alice", language)
    admin.login("alice", PASSWORD)
    assessment = start_assessment(admin, world)
    answer(admin, assessment, "A2", "A2.1", "whole")
    # Answered on screen: the auto-fail shows at the question as soon as it is saved.
    answer(admin, assessment, "A6", "A6.4", "no")
    admin.see(
        f"{q('A6.4')} p.error", ui("This answer fails the assessment automatically.", language)
    )
    admin.see(f"{q('A6.4')} p.error", text["A6.4 auto-fail"])
    world.answer_all(assessment, failing={"A6.4"})

    admin.open(f"/assessments/{assessment.pk}/precheck/")
    admin.see("ul#auto-failures", "A6.4")
    admin.see("ul#auto-failures", text["A6.4 auto-fail"])

    signatory = browse("bob", language)
    signatory.login("bob", PASSWORD)
    sign_declaration(signatory, assessment)
    submit(admin, assessment)

    reviewer = open_review(browse, assessment, language)
    comment = "14日を超えて未適用のパッチがあります。"
    mark(reviewer, assessment, "A6.4", Verdict.NON_COMPLIANT, comment)
    mark_the_rest(assessment, skip={"A6.4"})
    decide(reviewer, assessment, "fail", "A6.4 を是正してください。")
    decision = Decision.objects.get(assessment=assessment, round=1)
    assert decision.outcome == "fail"
    assert not Certificate.objects.filter(assessment=assessment).exists()

    # The applicant reads the advice report and downloads it as a PDF.
    admin.open(f"/assessments/{assessment.pk}/")
    admin.see_class("#assessment-state", State.FAILED)
    admin.click_and_wait(f"a[href='/assessments/{assessment.pk}/advice/1/']")
    admin.see(".advice-item .qid", "A6.4")
    with translation.override(language):
        remediation = Question.objects.get(catalogue=assessment.catalogue, qid="A6.4").remediation
    assert text["A6.4 remediation"] in remediation
    admin.see(".advice-item", remediation)
    admin.see(".advice-item", comment)
    with admin.page.expect_download() as download:
        admin.page.locator(f"a[href$='/advice/1/pdf/?lang={language}']").click()
    pdf = Path(download.value.path()).read_bytes()
    assert pdf.startswith(b"%PDF"), f"advice download is not a PDF: {pdf[:40]!r}"
    # File storage may add a suffix when a name is taken; the stem names what is inside.
    filename = download.value.suggested_filename
    assert filename.startswith(f"advice-{assessment.reference}-r1-{language}"), filename
    assert filename.endswith(".pdf"), filename
    pdf_text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "A6.4" in pdf_text

    # Only the failed answer may change now; the applicant fixes it on screen and resubmits.
    admin.open(f"/assessments/{assessment.pk}/sections/A6/")
    admin.absent(f"{q('A6.5')} input[name=value]")
    answer(admin, assessment, "A6", "A6.4", "yes")
    admin.absent(f"{q('A6.4')} p.error")
    # The corrected answers are new statements: the board signs again before the resubmission.
    admin.open(f"/assessments/{assessment.pk}/")
    admin.absent(f"form[action='/assessments/{assessment.pk}/resubmit/']")
    sign_declaration(signatory, assessment, status="warning")
    admin.open(f"/assessments/{assessment.pk}/")
    admin.confirm_and_wait(
        f"form[action='/assessments/{assessment.pk}/resubmit/'] button",
        ui("Resubmit now? This is the only resubmission allowed.", language),
    )
    admin.see_message("Resubmitted for review.")
    admin.see_class("#assessment-state", State.RESUBMITTED)
    assessment.refresh_from_db()
    assert (assessment.state, assessment.round) == (State.RESUBMITTED, 2)

    # The assessor reviews only what failed: accepted marks carried over to the new round.
    reviewer.open(f"/assessments/{assessment.pk}/review/")
    reviewer.see_class("#assessment-state", State.RESUBMITTED)
    mark(reviewer, assessment, "A6.4", Verdict.COMPLIANT)
    decide(reviewer, assessment, "pass", "是正を確認しました。")
    certificate = Certificate.objects.get(assessment=assessment)
    assert certificate.status == "valid"
    reviewer.see("#certificate-link", certificate.number)
    admin.open(f"/assessments/{assessment.pk}/")
    admin.see("#certificate-link", certificate.number)

    assert verify_trail() is None


def test_htmx_autosave_runs_under_the_content_security_policy(browse, people):
    world = people
    assessment = world.start()
    admin = browse("alice", "ja")
    # Installed through the DevTools protocol, so the policy under test does not apply to it.
    admin.context.add_init_script(
        "window.__violations = [];"
        "document.addEventListener('securitypolicyviolation', (e) =>"
        " window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    errors: list[str] = []
    admin.page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    admin.page.on("pageerror", lambda exc: errors.append(str(exc)))
    admin.login("alice", PASSWORD)

    response = admin.open(f"/assessments/{assessment.pk}/sections/A2/")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy, policy
    assert "unsafe-" not in policy, policy
    assert admin.page.evaluate("typeof window.htmx") == "object", "htmx did not load"

    # Choosing a sub-set updates the notes of the questions that depend on it (out-of-band
    # swaps), and the description is saved when the field loses focus.
    admin.see_class("[id='applies-A2.2']", "not-needed")
    answer(admin, assessment, "A2", "A2.1", "subset")
    admin.page.locator("[id='applies-A2.2']:not(.not-needed)").wait_for(state="attached")
    admin.page.fill(f"{q('A2.2')} textarea", "本店事務センターの内部系ネットワーク")
    admin.page.locator(f"{q('A2.2')} textarea").blur()
    admin.see(f"{q('A2.2')} .status.saved", SAVED["ja"])
    progress = services.Snapshot.load(assessment).progress()
    admin.see(
        f"#progress [role=progressbar][aria-valuenow='{progress.answered}']"
        f"[aria-valuemax='{progress.required}']"
    )

    assert admin.page.evaluate("window.__violations") == [], errors
    assert errors == []

    # The listeners do see a violation: an inline script is refused and reported.
    admin.page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.__inline = true;'; document.body.appendChild(s); }"
    )
    admin.page.wait_for_function("window.__violations.length > 0")
    assert admin.page.evaluate("window.__inline === undefined")
    assert admin.page.evaluate("window.__violations")[0].startswith("script-src")
