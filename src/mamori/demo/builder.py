"""Demo data: the real working group's roster, loaded as a roster and nothing more, and a
fictitious scheme around it — a certification body, a scheme owner, six applicants (``cast``)
with users for every role, and assessments in every state with certificates valid, about to
expire, just expired and revoked — built through the same services the product uses."""

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
from mamori.demo import cast
from mamori.organisations.access import Access
from mamori.organisations.models import Category, Membership, Organisation, Role, WorkingGroup

# The FSA's announcement of the working group's participants (public facts, 6 KB): 36 members
# by category, and the FSA as convenor, not a member.
WORKING_GROUP_FILE = Path(__file__).resolve().parent / "data" / "working-group-2026.json"
WORKING_GROUP_NAME = (
    "官民連携会議 作業部会（2026年5月14日 金融庁公表）",
    "Working group of the public-private conference (FSA announcement, 14 May 2026)",
)
CERTIFICATION_BODY = (cast.CERTIFICATION_BODY.name_ja, cast.CERTIFICATION_BODY.name_en)
SCHEME_OWNER = (cast.SECRETARIAT.name_ja, cast.SECRETARIAT.name_en)
# The certification body of the demo before its organisations were fictitious: a database that
# has it holds real organisations' names with invented outcomes, and is not built upon.
EARLIER_DEMO_BODY = "Mamori Certification Co., Ltd. (demo)"


class EarlierDemoLoaded(Exception):
    """The database holds the earlier demo (real organisations with invented outcomes)."""


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
    changes = []
    for question in snapshot.questions:
        spec = question.rules
        value = samples.failing_value(spec) if question.qid in failing else None
        if value is None:
            value = samples.compliant_value(spec)
        if question.qid == assessment.catalogue.scope.get("kind_question"):
            value = "whole"
        current = snapshot.answers.get(question.qid)
        changes.append(
            services.AnswerChange(question.qid, value, current.version if current else 0)
        )
    services.save_answers(user, access, assessment.pk, changes)


def _answer_some(user, access: Access, assessment: Assessment, count: int) -> None:
    snapshot = services.Snapshot.load(assessment)
    services.save_answers(
        user,
        access,
        assessment.pk,
        [
            services.AnswerChange(question.qid, samples.compliant_value(question.rules), 0)
            for question in snapshot.questions[:count]
        ],
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
    changes = []
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
        changes.append(services.MarkChange(question.qid, verdict, comment))
    services.mark_answers(assessor, access, assessment.pk, changes)


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
    if Organisation.objects.filter(name_en=EARLIER_DEMO_BODY).exists():
        raise EarlierDemoLoaded(
            "This database holds the earlier demo, which showed real organisations with invented "
            "outcomes; load the demo into an empty database (e.g. remove var/mamori.sqlite3)."
        )
    return Organisation.objects.filter(name_en=CERTIFICATION_BODY[1]).exists()


def roster() -> dict:
    """The bundled roster: ``organisations`` (the members, with categories) and ``convenor``."""
    return json.loads(WORKING_GROUP_FILE.read_text(encoding="utf-8"))


def load_working_group() -> WorkingGroup:
    """The roster as published: each member with its category, the convenor apart. Nothing is
    attached to these organisations — no user, assessment, certificate, host or survey answer
    (idempotent: run again, it changes nothing)."""
    data = roster()
    convenor_entry = data["convenor"]
    if any(entry["name_en"] == convenor_entry["name_en"] for entry in data["organisations"]):
        raise ValueError("the convenor is listed among the members")
    members = []
    for entry in data["organisations"]:
        if entry["category"] not in Category.values:
            raise ValueError(f"{entry['name_en']}: unknown category {entry['category']}")
        organisation, _created = Organisation.objects.get_or_create(
            name_en=entry["name_en"],
            defaults={"name_ja": entry["name_ja"], "category": entry["category"]},
        )
        members.append(organisation)
    convenor, _created = Organisation.objects.get_or_create(
        name_en=convenor_entry["name_en"],
        defaults={"name_ja": convenor_entry["name_ja"], "category": Category.GOVERNMENT},
    )
    group, _created = WorkingGroup.objects.get_or_create(
        name_en=WORKING_GROUP_NAME[1],
        defaults={"name_ja": WORKING_GROUP_NAME[0], "source": data["source"]},
    )
    group.convenor = convenor
    group.save(update_fields=["convenor", "updated_at"])
    group.members.set(members)
    return group


def _organisation(entry: cast.Fictitious) -> Organisation:
    return Organisation.objects.create(
        name_ja=entry.name_ja, name_en=entry.name_en, category=entry.category
    )


def _people(entry: cast.Fictitious, organisation: Organisation, credentials, roles) -> dict:
    """Demo users of one applicant: ``roles`` of admin, contributor and signatory."""
    short = entry.name_ja.replace("株式会社", "").removesuffix(cast.MARK_JA)
    kinds = {
        "admin": ("admin", "管理者", Role.APPLICANT_ADMIN),
        "contributor": ("staff", "担当者", Role.APPLICANT_CONTRIBUTOR),
        "signatory": ("board", "取締役", Role.BOARD_SIGNATORY),
    }
    people = {}
    for kind in roles:
        suffix, title, role = kinds[kind]
        people[kind] = _user(
            f"{entry.key}-{suffix}",
            f"{short} {title}",
            f"{suffix}@{entry.key}.example.jp",
            credentials,
            role,
            organisation,
        )
    return people


def _decide(assessor, assessment: Assessment, outcome: str, reason: str) -> Assessment:
    services.decide(assessor, Access.for_user(assessor), assessment.pk, outcome, reason)
    assessment.refresh_from_db()
    return assessment


def _pass(assessor, people: dict, organisation: Organisation, body: Organisation) -> Assessment:
    passed = _submitted(people, organisation, body)
    _mark_all(assessor, passed)
    return _decide(
        assessor,
        passed,
        Outcome.PASS,
        "デモ: すべての要求事項に適合しています。 (Demo: all requirements met.)",
    )


def _fail(assessor, people: dict, organisation: Organisation, body, qid: str) -> Assessment:
    failed = _submitted(people, organisation, body, failing={qid})
    _mark_all(assessor, failed)
    return _decide(
        assessor,
        failed,
        Outcome.FAIL,
        "デモ: 自動不合格の項目があります。 (Demo: an automatic-fail answer.)",
    )


def _resubmit_fixed(people: dict, failed: Assessment, qid: str) -> None:
    admin, signatory = people["admin"], people["signatory"]
    admin_access = Access.for_user(admin)
    snapshot = services.Snapshot.load(failed)
    answer = snapshot.answers[qid]
    services.save_answer(
        admin,
        admin_access,
        failed.pk,
        qid,
        samples.compliant_value(answer.question.rules),
        answer.version,
    )
    services.sign_declaration(
        signatory, Access.for_user(signatory), failed.pk, signatory.display_name, "取締役 CISO"
    )
    services.resubmit(admin, admin_access, failed.pk)


@transaction.atomic
def build(credentials_file: Path) -> list[DemoUser]:
    """The roster and the fictitious scheme, once (``already_loaded`` says whether it was)."""
    load_bundled()
    catalogue = current_catalogue(timezone.localdate())
    if catalogue is None:
        raise RuntimeError("no catalogue in force; check src/mamori/catalogue/data")
    load_working_group()
    body = _organisation(cast.CERTIFICATION_BODY)
    owner_org = _organisation(cast.SECRETARIAT)

    credentials: list[DemoUser] = []
    _user(
        "owner",
        "制度 事務局",
        "owner@secretariat.example.jp",
        credentials,
        Role.SCHEME_OWNER,
        owner_org,
        mfa=True,
    )
    _user(
        "observer",
        "監督 太郎",
        "observer@supervisor.example.jp",
        credentials,
        Role.OBSERVER,
        _organisation(cast.SUPERVISOR),
        mfa=True,
    )
    assessor1 = _user(
        "assessor1", "審査 一郎", "assessor1@cb.example.jp", credentials, Role.ASSESSOR, body, True
    )
    assessor2 = _user(
        "assessor2", "審査 花子", "assessor2@cb.example.jp", credentials, Role.ASSESSOR, body, True
    )

    full = ("admin", "contributor", "signatory")
    signing = ("admin", "signatory")
    orgs, people = {}, {}
    for entry, roles in (
        (cast.KOHAKU_BANK, full),
        (cast.RURI_SHINKIN, signing),
        (cast.MENOU_SYSTEMS, signing),
        (cast.SUISHO_IS, signing),
        (cast.HISUI_SECURITIES, signing),
        (cast.SANGO_LIFE, ("admin",)),
    ):
        orgs[entry.key] = _organisation(entry)
        people[entry.key] = _people(entry, orgs[entry.key], credentials, roles)
    auto_fail_qid = next(q.qid for q in catalogue.questions.all() if q.has_auto_fail)

    # Drafts: the bank's contributor has answered twenty questions, the insurer's admin five.
    for key, who, count in (("kohaku", "contributor", 20), ("sango", "admin", 5)):
        admin, user = people[key]["admin"], people[key][who]
        draft = services.start_assessment(admin, Access.for_user(admin), orgs[key], body, Level.CE)
        _answer_some(user, Access.for_user(user), draft, count)
    # Submitted, waiting in the queue.
    _submitted(people["ruri"], orgs["ruri"], body)
    # In review, every answer marked, no decision yet.
    in_review = _submitted(people["menou"], orgs["menou"], body)
    _mark_all(assessor1, in_review)
    # Clarification requested on one answer.
    clarification = _submitted(people["suisho"], orgs["suisho"], body)
    snapshot = services.Snapshot.load(clarification)
    flagged = next(q.qid for q in snapshot.questions if q.is_scored and q.qid in snapshot.answers)
    _mark_all(assessor2, clarification, {flagged: Verdict.NEEDS_INFORMATION})
    services.request_clarification(assessor2, Access.for_user(assessor2), clarification.pk)
    # Failed with advice: the bank fixed the answer and resubmitted, the shinkin bank has not.
    failed = _fail(assessor1, people["kohaku"], orgs["kohaku"], body, auto_fail_qid)
    _resubmit_fixed(people["kohaku"], failed, auto_fail_qid)
    _fail(assessor1, people["ruri"], orgs["ruri"], body, auto_fail_qid)
    # Passed: valid (two), about to expire, just expired and revoked. The expiring and expired
    # ones are inside the reminder windows, so `make run` shows reminders going out.
    _pass(assessor2, people["menou"], orgs["menou"], body)
    _pass(assessor2, people["hisui"], orgs["hisui"], body)
    _backdate(_pass(assessor2, people["kohaku"], orgs["kohaku"], body), 11, days=10)
    _backdate(_pass(assessor2, people["suisho"], orgs["suisho"], body), 12, days=10)
    revoked = _pass(assessor2, people["ruri"], orgs["ruri"], body)
    revoke(
        assessor2,
        Access.for_user(assessor2),
        revoked.certificate.pk,
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
