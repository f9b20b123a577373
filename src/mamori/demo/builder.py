"""Demo data: the working group's 37 organisations, a certification body, a scheme owner, users for
every role and assessments in every state, built through the same services the product uses."""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from dateutil.relativedelta import relativedelta
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from mamori.accounts.models import User
from mamori.assessments import services
from mamori.assessments.models import Assessment, Decision, Level, Outcome, Verdict
from mamori.catalogue import samples
from mamori.catalogue.services import current_catalogue, load_bundled
from mamori.certificates.models import Certificate
from mamori.certificates.services import revoke
from mamori.organisations.access import Access
from mamori.organisations.models import Category, Membership, Organisation, Role

# A copy of shared/data/demo/working-group-2026.json (public facts, 6 KB), so `make run` works on
# any machine; a test checks that it matches the shared original.
WORKING_GROUP_FILE = Path(__file__).resolve().parent / "data" / "working-group-2026.json"
CERTIFICATION_BODY = ("守り認証株式会社（デモ）", "Mamori Certification Co., Ltd. (demo)")
SCHEME_OWNER = ("サイバー衛生制度事務局（デモ）", "Cyber Hygiene Scheme Secretariat (demo)")


@dataclass
class DemoUser:
    username: str
    password: str
    role: str
    organisation: str
    totp_secret: str = ""


def _password() -> str:
    return secrets.token_urlsafe(12)


def _user(
    username: str,
    display: str,
    email: str,
    credentials: list[DemoUser],
    role: str,
    organisation: Organisation,
    mfa: bool = False,
) -> User:
    password = _password()
    user = User.objects.create_user(
        username=username, password=password, email=email, display_name=display
    )
    Membership.objects.create(user=user, organisation=organisation, role=role)
    secret = ""
    if mfa:
        device = TOTPDevice.objects.create(user=user, name="demo authenticator", confirmed=True)
        secret = base64.b32encode(device.bin_key).decode("ascii").rstrip("=")
    credentials.append(DemoUser(username, password, role, organisation.name_ja, secret))
    return user


def _answer_all(
    user, access: Access, assessment: Assessment, failing: set[str] = frozenset()
) -> None:
    snapshot = services.Snapshot.load(assessment)
    for question in snapshot.questions:
        spec = question.rules
        value = samples.failing_value(spec) if question.qid in failing else None
        if value is None:
            value = samples.compliant_value(spec)
        if question.qid == assessment.catalogue.scope.get("kind_question"):
            value = "whole"
        current = snapshot.answers.get(question.qid)
        services.save_answer(
            user, access, assessment.pk, question.qid, value, current.version if current else 0
        )


def _answer_some(user, access: Access, assessment: Assessment, count: int) -> None:
    snapshot = services.Snapshot.load(assessment)
    for question in snapshot.questions[:count]:
        services.save_answer(
            user, access, assessment.pk, question.qid, samples.compliant_value(question.rules), 0
        )


def _submitted(
    people: dict, organisation: Organisation, body: Organisation, failing: set[str] = frozenset()
) -> Assessment:
    admin, signatory = people["admin"], people["signatory"]
    admin_access = Access.for_user(admin)
    assessment = services.start_assessment(admin, admin_access, organisation, body, Level.CE)
    _answer_all(admin, admin_access, assessment, failing)
    services.sign_declaration(
        signatory, Access.for_user(signatory), assessment.pk, signatory.display_name, "取締役 CISO"
    )
    return services.submit(admin, admin_access, assessment.pk)


def _mark_all(assessor, assessment: Assessment, verdicts: dict[str, str] | None = None) -> None:
    access = Access.for_user(assessor)
    if assessment.assessor_id != assessor.pk:
        services.take_over(assessor, access, assessment.pk)
    snapshot = services.Snapshot.load(assessment)
    auto = set(services.scoring.auto_failures(snapshot.specs, snapshot.values))
    for question in snapshot.questions:
        if not question.is_scored or question.qid not in snapshot.answers:
            continue
        verdict = (verdicts or {}).get(question.qid)
        if verdict is None:
            verdict = Verdict.NON_COMPLIANT if question.qid in auto else Verdict.COMPLIANT
        comment = (
            ""
            if verdict == Verdict.COMPLIANT
            else "デモ: 根拠資料が不足しています。 (Demo: evidence is missing.)"
        )
        services.mark_answer(assessor, access, assessment.pk, question.qid, verdict, comment)


def _backdate(assessment: Assessment, months: int, days: int = 0) -> None:
    """Move a decided assessment and its certificate into the past (demo only)."""
    shift = relativedelta(months=months, days=days)
    certificate = assessment.certificate
    # The number stays: the audit trail recorded it at issue.
    Certificate.objects.filter(pk=certificate.pk).update(
        issued_on=certificate.issued_on - shift, expires_on=certificate.expires_on - shift
    )
    Decision.objects.filter(assessment=assessment).update(decided_at=timezone.now() - shift)


def already_loaded() -> bool:
    return Organisation.objects.filter(name_en=CERTIFICATION_BODY[1]).exists()


@transaction.atomic
def build(credentials_file: Path) -> list[DemoUser]:
    load_bundled()
    catalogue = current_catalogue(timezone.localdate())
    if catalogue is None:
        raise RuntimeError("no catalogue in force; check src/mamori/catalogue/data")
    data = json.loads(WORKING_GROUP_FILE.read_text(encoding="utf-8"))
    organisations = {}
    for entry in data["organisations"]:
        organisation, _created = Organisation.objects.get_or_create(
            name_en=entry["name_en"],
            defaults={"name_ja": entry["name_ja"], "category": entry["category"]},
        )
        organisations[entry["name_en"]] = organisation
    body = Organisation.objects.create(
        name_ja=CERTIFICATION_BODY[0],
        name_en=CERTIFICATION_BODY[1],
        category=Category.CERTIFICATION_BODY,
    )
    owner_org = Organisation.objects.create(
        name_ja=SCHEME_OWNER[0], name_en=SCHEME_OWNER[1], category=Category.OTHER
    )

    credentials: list[DemoUser] = []
    _user(
        "owner",
        "制度 事務局",
        "owner@example.jp",
        credentials,
        Role.SCHEME_OWNER,
        owner_org,
        mfa=True,
    )
    assessor1 = _user(
        "assessor1", "審査 一郎", "assessor1@example.jp", credentials, Role.ASSESSOR, body, mfa=True
    )
    assessor2 = _user(
        "assessor2", "審査 花子", "assessor2@example.jp", credentials, Role.ASSESSOR, body, mfa=True
    )

    applicants = []
    for key, name_en in (
        ("sevenbank", "Seven Bank, Ltd."),
        ("rakuten", "Rakuten Bank, Ltd."),
        ("nttdata", "NTT DATA Corporation"),
        ("fujitsu", "Fujitsu Limited"),
    ):
        organisation = organisations[name_en]
        people = {
            "admin": _user(
                f"{key}-admin",
                f"{key} 管理者",
                f"admin@{key}.example.jp",
                credentials,
                Role.APPLICANT_ADMIN,
                organisation,
            ),
            "contributor": _user(
                f"{key}-staff",
                f"{key} 担当者",
                f"staff@{key}.example.jp",
                credentials,
                Role.APPLICANT_CONTRIBUTOR,
                organisation,
            ),
            "signatory": _user(
                f"{key}-board",
                f"{key} 取締役",
                f"board@{key}.example.jp",
                credentials,
                Role.BOARD_SIGNATORY,
                organisation,
            ),
        }
        applicants.append((organisation, people))

    (bank_a, people_a), (bank_b, people_b), (vendor_a, people_c), (vendor_b, people_d) = applicants
    auto_fail_qid = next(q.qid for q in catalogue.questions.all() if q.has_auto_fail)

    # Draft, partly answered.
    draft = services.start_assessment(
        people_a["admin"], Access.for_user(people_a["admin"]), bank_a, body, Level.CE
    )
    _answer_some(people_a["contributor"], Access.for_user(people_a["contributor"]), draft, 20)
    # Submitted, waiting in the queue.
    _submitted(people_b, bank_b, body)
    # In review, half marked.
    in_review = _submitted(people_c, vendor_a, body)
    _mark_all(assessor1, in_review)
    # Clarification requested.
    clarification = _submitted(people_d, vendor_b, body)
    snapshot = services.Snapshot.load(clarification)
    flagged = next(q.qid for q in snapshot.questions if q.is_scored and q.qid in snapshot.answers)
    _mark_all(assessor2, clarification, {flagged: Verdict.NEEDS_INFORMATION})
    services.request_clarification(assessor2, Access.for_user(assessor2), clarification.pk)
    # Failed with advice, then resubmitted.
    for people, organisation, resubmit in ((people_a, bank_a, True), (people_b, bank_b, False)):
        failed = _submitted(people, organisation, body, failing={auto_fail_qid})
        _mark_all(assessor1, failed)
        services.decide(
            assessor1,
            Access.for_user(assessor1),
            failed.pk,
            Outcome.FAIL,
            "デモ: 自動不合格の項目があります。 (Demo: an automatic-fail answer.)",
        )
        if resubmit:
            admin_access = Access.for_user(people["admin"])
            snapshot = services.Snapshot.load(failed)
            services.save_answer(
                people["admin"],
                admin_access,
                failed.pk,
                auto_fail_qid,
                samples.compliant_value(snapshot.answers[auto_fail_qid].question.rules),
                snapshot.answers[auto_fail_qid].version,
            )
            signatory = people["signatory"]
            services.sign_declaration(
                signatory,
                Access.for_user(signatory),
                failed.pk,
                signatory.display_name,
                "取締役 CISO",
            )
            services.resubmit(people["admin"], admin_access, failed.pk)
    # Passed: valid, expiring soon, expired and revoked certificates. The expiring and expired
    # ones are inside the reminder windows, so `make run` shows reminders going out.
    for people, organisation, fate in (
        (people_c, vendor_a, "valid"),
        (people_d, vendor_b, "expired"),
        (people_b, bank_b, "revoked"),
        (people_a, bank_a, "expiring"),
    ):
        passed = _submitted(people, organisation, body)
        _mark_all(assessor2, passed)
        services.decide(
            assessor2,
            Access.for_user(assessor2),
            passed.pk,
            Outcome.PASS,
            "デモ: すべての要求事項に適合しています。 (Demo: all requirements met.)",
        )
        passed.refresh_from_db()
        if fate == "expired":
            _backdate(passed, 12, days=10)
        elif fate == "expiring":
            _backdate(passed, 11, days=10)
        elif fate == "revoked":
            revoke(
                assessor2,
                Access.for_user(assessor2),
                passed.certificate.pk,
                "デモ: 重大なインシデントにより取消。 (Demo: revoked after a serious incident.)",
            )

    credentials_file.parent.mkdir(parents=True, exist_ok=True)
    credentials_file.write_text(
        json.dumps([c.__dict__ for c in credentials], ensure_ascii=False, indent=1),
        encoding="utf-8",
    )
    credentials_file.chmod(0o600)
    return credentials


def read_credentials(credentials_file: Path) -> list[DemoUser]:
    if not credentials_file.exists():
        return []
    return [DemoUser(**row) for row in json.loads(credentials_file.read_text(encoding="utf-8"))]


def otpauth_uri(user: DemoUser) -> str:
    return f"otpauth://totp/Mamori:{user.username}?secret={user.totp_secret}&issuer=Mamori"
