"""Scheme-core benchmark on PostgreSQL at sector scale.

Builds a database with 1,500 organisations, more than 20,000 assessments and 2,000,000 answers
(plus marks, decisions and certificates), then times the pages people wait for: the assessor's
queue, the review page of one assessment, the applicant's assessment and section pages, and the
public certificate verification (HTML and JSON). For each it prints median, p95 and max in ms and
the number of SQL queries per request, and shows that the query counts do not grow with the
number of answers. Results also go to ``bench/results/scheme_core.json``.

Run it with ``make bench`` (see bench/README.md). The database named in ``DATABASE_URL`` is
dropped and recreated unless ``--reuse`` is given, so the name must contain "bench".
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import benchdb  # bench/benchdb.py: the scripts run from bench/, which is on sys.path

ROOT = Path(__file__).resolve().parent.parent
RESULTS_FILE = ROOT / "bench" / "results" / "scheme_core.json"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/mamori_bench"

# --- Size of the generated scheme -----------------------------------------------------------
ORGANISATIONS = 1_500  # 1,497 applicants, two certification bodies and the scheme secretariat
APPLICANTS = ORGANISATIONS - 3
ANSWER_TARGET = 2_000_000
BENCH_CATALOGUE = "CE-JP 2026"  # pinned: the edition the recorded figures were measured on
DRAFTS = 600
SPARSE_ANSWERS = 5  # the probe assessment used to show query counts do not grow with answers
TARGET_MEDIAN_MS = 150.0
SEED = 20260401

# Open work per assessor: (submitted, in review, resubmitted, clarification). The measured
# assessor "ada" has a queue of a few hundred; colleagues and the second body carry their own.
ADA_QUEUE = (100, 160, 30, 20)
COLLEAGUE_QUEUE = (10, 20, 3, 3)
BODY_A_COLLEAGUES = 7
BODY_B_ASSESSORS = 6
BODY_B_QUEUE = (15, 25, 4, 4)
UNASSIGNED = {"A": 40, "B": 30}
BODY_A_SHARE = 0.6  # of drafts and decided assessments
DECIDED_MIX = (("passed", 1, 0.80), ("passed", 2, 0.05), ("failed", 1, 0.15))


# --- Environment and database ---------------------------------------------------------------


def configure_environment() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mamori.settings")
    os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
    # The public API is throttled per client address and every benchmark request comes from
    # the same one: lift the limit so the run measures the page, not the throttle.
    os.environ["MAMORI_PUBLIC_API_RATE"] = "1000000/minute"


def check_database() -> dict:
    return benchdb.check_database("mamori_bench")


def copy_rows(model, names: str, rows: Iterable[tuple]) -> int:
    """Stream rows into ``model``'s table with COPY; ``names`` lists each row's fields.

    Every NOT NULL column must be given: the database has no column defaults (Django applies
    them in Python), so a missing one would fail deep inside COPY; say which one up front."""
    from django.db import connection

    meta = model._meta
    fields = names.split()
    missing = [f.name for f in meta.concrete_fields if not f.null and f.name not in fields]
    if missing:
        raise RuntimeError(f"{meta.label}: no value for NOT NULL field(s) {', '.join(missing)}")
    quote = connection.ops.quote_name
    columns = ", ".join(quote(meta.get_field(name).column) for name in fields)
    statement = f"COPY {quote(meta.db_table)} ({columns}) FROM STDIN"
    count = 0
    with connection.cursor() as cursor, cursor.cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


# --- The generated scheme -------------------------------------------------------------------


@dataclass(frozen=True)
class QuestionInfo:
    index: int
    pk: int
    qid: str
    scored: bool
    compliant: object  # the Python value, for digests
    compliant_json: str
    failing: object | None
    failing_json: str | None


@dataclass
class Plan:
    """One assessment to generate. Answers, marks and decisions are derived from it, so the big
    tables are streamed without holding two million rows in memory."""

    pk: int
    organisation: int  # index into the applicants
    body: str  # "A" or "B"
    assessor: int | None  # user id
    state: str
    round: int
    created: dt.datetime
    submitted: dt.datetime | None = None
    decided: dt.datetime | None = None
    answered: tuple[int, ...] = ()  # question indices, in catalogue order
    failing: tuple[int, ...] = ()  # question indices answered with a failing value in round 1
    flagged: tuple[int, ...] = ()  # marked "needs information" (clarification)
    marked: int | None = None  # how many scored answers carry a mark in the current round
    level: str = "CE"
    first_answer_id: int = 0
    revoked: bool = False


def json_text(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class Scheme:
    """Deterministic (seeded) generator of the whole data set, loaded table by table."""

    def __init__(self, catalogue, now: dt.datetime) -> None:
        from mamori.catalogue import samples
        from mamori.catalogue.models import Question

        self.rng = random.Random(SEED)
        self.catalogue = catalogue
        self.now = now
        questions = list(Question.objects.filter(catalogue=catalogue).order_by("position"))
        self.questions: list[QuestionInfo] = []
        self.inventory_variants: dict[int, list[tuple[object, str]]] = {}
        for index, question in enumerate(questions):
            spec = question.rules
            compliant = samples.compliant_value(spec)
            failing = samples.failing_value(spec) if question.is_scored else None
            self.questions.append(
                QuestionInfo(
                    index,
                    question.pk,
                    question.qid,
                    question.is_scored,
                    compliant,
                    json_text(compliant),
                    failing,
                    None if failing is None else json_text(failing),
                )
            )
            if question.kind == "inventory":
                self.inventory_variants[index] = self._inventories(spec, compliant)
        self.by_qid = {q.qid: q for q in self.questions}
        self.scored = [q.index for q in self.questions if q.scored]
        self.can_fail = [q.index for q in self.questions if q.failing is not None]
        scope = catalogue.scope
        self.kind_q = self.by_qid[scope["kind_question"]].index
        self.description_q = self.by_qid[scope["description_question"]].index
        self.all_questions = tuple(range(len(self.questions)))

    @staticmethod
    def _inventories(spec, compliant) -> list[tuple[object, str]]:
        """Inventory tables of a few sizes (1 to 30 rows): real scopes list many devices."""
        row = compliant[0]
        variants = []
        for size in (1, 4, 12, 30):
            rows = [
                {
                    key: (
                        f"{value}-{n:02d}" if isinstance(value, str) and value == "demo" else value
                    )
                    for key, value in row.items()
                }
                for n in range(1, size + 1)
            ]
            value = spec.normalise(rows)
            if spec.auto_fails(value) or spec.is_compliant(value) is False:
                raise RuntimeError(f"{spec.qid}: generated inventory is not compliant")
            variants.append((value, json_text(value)))
        return variants

    # --- organisations and people ---------------------------------------------------------

    def organisations(self) -> Iterator[tuple]:
        from mamori.organisations.models import Category

        categories = [
            (Category.FINANCIAL_INSTITUTION, "銀行", "Bank", 0.55),
            (Category.IT_VENDOR, "システム", "Systems", 0.35),
            (Category.INDUSTRY_ASSOCIATION, "協会", "Association", 0.04),
            (Category.OTHER, "サービス", "Services", 0.06),
        ]
        weights = [c[3] for c in categories]
        now = self.now
        yield (1, now, now, "認定機関A", "Certification Body A", Category.CERTIFICATION_BODY, "")
        yield (2, now, now, "認定機関B", "Certification Body B", Category.CERTIFICATION_BODY, "")
        yield (3, now, now, "制度事務局", "Scheme Secretariat", Category.OTHER, "")
        for n in range(APPLICANTS):
            category, ja, en, _weight = self.rng.choices(categories, weights)[0]
            yield (
                4 + n,
                now,
                now,
                f"ベンチ{ja}{n + 1:04d}",
                f"Bench {en} {n + 1:04d}",
                category,
                corporate_number(n + 1),
            )

    def people(self) -> tuple[list[tuple], list[tuple], dict]:
        """Users and memberships: an administrator and a board signatory per applicant, the
        assessors of both bodies (``ada`` is the one measured) and a scheme owner."""
        from django.contrib.auth.hashers import make_password

        from mamori.organisations.models import Role

        unusable = make_password(None)  # force_login only: nobody signs in with a password
        users, memberships = [], []
        now = self.now

        def user(pk: int, username: str, display: str) -> int:
            email = f"{username}@bench.example.jp"
            # id, password, superuser, username, first/last name, email, staff, active, joined
            users.append(
                (pk, unusable, False, username, "", "", email, False, True, now, display, "ja")
            )
            return pk

        def member(user_id: int, organisation_id: int, role: str) -> None:
            memberships.append((len(memberships) + 1, now, now, user_id, organisation_id, role))

        pk = 0
        roster = {"A": [], "B": [], "admins": [], "signatories": []}
        for body_id, body, count in (("A", 1, 1 + BODY_A_COLLEAGUES), ("B", 2, BODY_B_ASSESSORS)):
            for n in range(count):
                pk += 1
                username = "ada" if body_id == "A" and n == 0 else f"assessor-{body_id}{n:02d}"
                member(user(pk, username, username), body, Role.ASSESSOR)
                roster[body_id].append(pk)
        pk += 1
        member(user(pk, "olive", "olive"), 3, Role.SCHEME_OWNER)
        roster["owner"] = pk
        for n in range(APPLICANTS):
            organisation_id = 4 + n
            pk += 1
            admin = user(pk, f"admin{n + 1:04d}", f"管理者 {n + 1}")
            member(admin, organisation_id, Role.APPLICANT_ADMIN)
            roster["admins"].append(admin)
            pk += 1
            signatory = user(pk, f"board{n + 1:04d}", f"取締役 {n + 1}")
            member(signatory, organisation_id, Role.BOARD_SIGNATORY)
            roster["signatories"].append(signatory)
        return users, memberships, roster

    # --- assessments ----------------------------------------------------------------------

    def plan(self, roster: dict) -> list[Plan]:
        rng, now = self.rng, self.now
        plans: list[Plan] = []

        def days_ago(low: float, high: float) -> dt.datetime:
            return now - dt.timedelta(days=rng.uniform(low, high))

        def open_review(body: str, assessor: int | None, state: str) -> Plan:
            submitted = days_ago(0.2, 14)
            plan = Plan(
                pk=0,
                organisation=rng.randrange(APPLICANTS),
                body=body,
                assessor=assessor,
                state=state,
                round=2 if state == "resubmitted" else 1,
                created=submitted - dt.timedelta(days=rng.uniform(20, 90)),
                submitted=submitted,
                answered=self.all_questions,
            )
            scored = len(self.scored)
            if state == "submitted":
                plan.marked = 0
            elif state == "in_review":
                plan.marked = rng.randrange(scored + 1)
                if rng.random() < 0.1:
                    plan.failing = (rng.choice(self.can_fail),)
            elif state == "clarification":
                plan.marked = scored
                plan.flagged = tuple(rng.sample(self.scored, rng.randint(1, 3)))
            else:  # resubmitted: round one failed, the fixes wait for a new look
                plan.failing = tuple(rng.sample(self.can_fail, rng.randint(1, 3)))
                plan.marked = scored - len(plan.failing)
            return plan

        queue_states = ("submitted", "in_review", "resubmitted", "clarification")
        for body, assessors, quotas in (
            ("A", roster["A"][:1], ADA_QUEUE),
            ("A", roster["A"][1:], COLLEAGUE_QUEUE),
            ("B", roster["B"], BODY_B_QUEUE),
        ):
            for assessor in assessors:
                for state, count in zip(queue_states, quotas, strict=True):
                    plans.extend(open_review(body, assessor, state) for _ in range(count))
        for body, count in UNASSIGNED.items():
            plans.extend(open_review(body, None, "submitted") for _ in range(count))

        # The pages are measured on one of ada's submissions in review with every scored answer
        # marked; its twin with five answers shows that query counts do not depend on answers.
        target_org = rng.randrange(APPLICANTS)
        full = open_review("A", roster["A"][0], "in_review")
        full.organisation, full.marked, full.failing = target_org, len(self.scored), ()
        sparse = open_review("A", roster["A"][0], "in_review")
        sparse.organisation, sparse.failing = target_org, ()
        a7 = [q.index for q in self.questions if q.qid.startswith("A7.") and q.scored]
        sparse.answered = tuple(sorted(a7[:SPARSE_ANSWERS]))
        sparse.marked = SPARSE_ANSWERS
        plans += [full, sparse]

        for _ in range(DRAFTS):
            created = days_ago(1, 150)
            plans.append(
                Plan(
                    pk=0,
                    organisation=rng.randrange(APPLICANTS),
                    body="A" if rng.random() < BODY_A_SHARE else "B",
                    assessor=None,
                    state="draft",
                    round=1,
                    created=created,
                    answered=self.all_questions[: rng.randint(1, len(self.questions) - 1)],
                )
            )

        # Decided assessments make up the rest: enough of them for the answer target.
        answers_so_far = sum(len(p.answered) for p in plans)
        decided = math.ceil((ANSWER_TARGET - answers_so_far) / len(self.questions))
        mix_states = [(state, round_) for state, round_, _share in DECIDED_MIX]
        mix_weights = [share for _state, _round, share in DECIDED_MIX]
        for _ in range(decided):
            state, round_ = rng.choices(mix_states, mix_weights)[0]
            body = "A" if rng.random() < BODY_A_SHARE else "B"
            decided_at = days_ago(1, 730)
            submitted = decided_at - dt.timedelta(days=rng.uniform(2, 14))
            plan = Plan(
                pk=0,
                organisation=rng.randrange(APPLICANTS),
                body=body,
                assessor=rng.choice(roster[body]),
                state=state,
                round=round_,
                created=submitted - dt.timedelta(days=rng.uniform(14, 90)),
                submitted=submitted,
                decided=decided_at,
                answered=self.all_questions,
                marked=len(self.scored),
                revoked=state == "passed" and rng.random() < 0.01,
            )
            if state == "failed" or round_ == 2:
                plan.failing = tuple(rng.sample(self.can_fail, rng.randint(1, 3)))
            plans.append(plan)

        for plan in plans:
            plan.level = "PLUS" if rng.random() < 0.1 else "CE"
        # Oldest first, as they would have been created; ids and answer ids follow that order.
        plans.sort(key=lambda p: p.created)
        answer_id = 1
        for pk, plan in enumerate(plans, start=1):
            plan.pk = pk
            plan.first_answer_id = answer_id
            answer_id += len(plan.answered)
        self.subset_orgs = {n for n in range(APPLICANTS) if rng.random() < 0.2}
        return plans

    # --- answer values --------------------------------------------------------------------

    def values(self, plan: Plan, *, current: bool = True) -> list[tuple[int, object, str, int]]:
        """(question index, value, JSON, version) for each answer: the current answers, or with
        ``current=False`` the ones the board signed before a resubmission changed them."""
        fixed = plan.round == 2 and current
        subset = plan.organisation in self.subset_orgs
        result = []
        for index in plan.answered:
            question = self.questions[index]
            version = 1
            if index in plan.failing and not fixed:
                value, text = question.failing, question.failing_json
            elif index in self.inventory_variants:
                value, text = self.inventory_variants[index][plan.organisation % 4]
                version = 2 if index in plan.failing else 1
            else:
                value, text = question.compliant, question.compliant_json
                version = 2 if index in plan.failing else 1
            if index == self.kind_q:
                value = "subset" if subset else "whole"
                text = json_text(value)
            elif index == self.description_q and subset:
                value = (
                    f"本社及び{plan.organisation % 40 + 2}拠点の勘定系・情報系システム"
                    f" (head office and {plan.organisation % 40 + 2} branches)"
                )
                text = json_text(value)
            result.append((index, value, text, version))
        return result

    def digest(self, plan: Plan, *, current: bool = True) -> str:
        from mamori.assessments.services import answers_digest

        return answers_digest(
            {
                self.questions[i].qid: value
                for i, value, _t, _v in self.values(plan, current=current)
            }
        )

    def scope_text(self, plan: Plan) -> str:
        if plan.organisation in self.subset_orgs:
            for index, value, _text, _version in self.values(plan):
                if index == self.description_q:
                    return value
        return "組織全体 / Whole organisation"

    # --- row streams ----------------------------------------------------------------------

    def assessment_rows(self, plans: list[Plan], roster: dict) -> Iterator[tuple]:
        from dateutil.relativedelta import relativedelta

        from mamori.core.workdays import add_working_days

        months = self.catalogue.settings["completion_months"]
        for plan in plans:
            org_id = 4 + plan.organisation
            signatory = roster["signatories"][plan.organisation]
            declared_at = plan.submitted - dt.timedelta(hours=6) if plan.submitted else None
            digest = self.digest(plan)
            signed = self.digest(plan, current=False) if plan.round == 2 else digest
            feedback_due = None
            if plan.state == "clarification":
                feedback_due = add_working_days(self.now.date(), 2)
            elif plan.state == "failed":
                feedback_due = add_working_days(plan.decided.date(), 2)
            yield (
                plan.pk,
                plan.created,
                plan.decided or plan.submitted or plan.created,
                org_id,
                self.catalogue.pk,
                1 if plan.body == "A" else 2,
                plan.assessor,
                plan.level,
                plan.state,
                plan.round,
                roster["admins"][plan.organisation],
                (plan.created + relativedelta(months=months)).date(),
                plan.submitted,
                feedback_due,
                plan.decided,
                signatory if declared_at else None,
                f"取締役 {plan.organisation + 1}" if declared_at else "",
                "代表取締役" if declared_at else "",
                declared_at,
                signed if declared_at else "",
                digest,
            )

    def answer_rows(self, plans: list[Plan], roster: dict, progress) -> Iterator[tuple]:
        for plan in plans:
            answer_id = plan.first_answer_id
            admin = roster["admins"][plan.organisation]
            end = plan.submitted or self.now
            for index, _value, text, version in self.values(plan):
                saved = plan.created + (end - plan.created) * (index + 1) / (
                    len(self.questions) + 1
                )
                yield (answer_id, plan.pk, self.questions[index].pk, text, version, admin, saved)
                answer_id += 1
            progress.update(1)

    def mark_rows(self, plans: list[Plan], progress) -> Iterator[tuple]:
        mark_id = 0
        for plan in plans:
            progress.update(1)
            if not plan.marked:
                continue
            scored = [
                (plan.first_answer_id + position, index)
                for position, index in enumerate(plan.answered)
                if self.questions[index].scored
            ]
            marked_at = plan.decided or plan.submitted
            round_one = scored if plan.round == 2 else scored[: plan.marked]
            for answer_id, index in round_one:
                verdict, comment = "compliant", ""
                if index in plan.failing:
                    verdict, comment = "non_compliant", "要是正: 閾値を満たしていません。"
                elif index in plan.flagged:
                    verdict, comment = "needs_information", "設定画面の証跡を添付してください。"
                mark_id += 1
                yield (mark_id, answer_id, 1, plan.assessor, verdict, comment, 1, marked_at)
            if plan.round == 2:
                # Accepted answers keep their marks into round two (as resubmit does); after a
                # pass the fixed answers carry a fresh compliant mark on their new version.
                for answer_id, index in scored:
                    if index in plan.failing and plan.state != "passed":
                        continue
                    version = 2 if index in plan.failing else 1
                    mark_id += 1
                    yield (
                        mark_id,
                        answer_id,
                        2,
                        plan.assessor,
                        "compliant",
                        "",
                        version,
                        marked_at,
                    )

    def decision_rows(self, plans: list[Plan]) -> Iterator[tuple]:
        decision_id = 0
        for plan in plans:
            if plan.round == 2:
                decision_id += 1
                first = plan.submitted - dt.timedelta(days=10)
                summary = "不適合の回答を是正して再提出してください。"
                yield (decision_id, plan.pk, 1, "fail", summary, plan.assessor, first, "", "")
            if plan.decided:
                decision_id += 1
                outcome = "pass" if plan.state == "passed" else "fail"
                summary = "全ての要求事項を満たしています。" if outcome == "pass" else "要是正"
                yield (
                    decision_id,
                    plan.pk,
                    plan.round,
                    outcome,
                    summary,
                    plan.assessor,
                    plan.decided,
                    "",
                    "",
                )

    def certificate_rows(self, plans: list[Plan], names: dict[int, tuple[str, str]]):
        from dateutil.relativedelta import relativedelta
        from django.utils import timezone

        from mamori.certificates.services import LEVEL_PREFIX, NUMBER_ALPHABET

        months = self.catalogue.settings["certificate_months"]
        numbers: set[str] = set()
        certificate_id = 0
        for plan in plans:
            if plan.state != "passed":
                continue
            issued = timezone.localdate(plan.decided)
            while True:
                suffix = "".join(self.rng.choice(NUMBER_ALPHABET) for _ in range(8))
                number = f"{LEVEL_PREFIX[plan.level]}-{issued.year}-{suffix}"
                if number not in numbers:
                    numbers.add(number)
                    break
            revoked_at = None
            if plan.revoked:
                revoked_at = min(self.now, plan.decided + dt.timedelta(days=30))
            certificate_id += 1
            name_ja, name_en = names[4 + plan.organisation]
            yield (
                certificate_id,
                number,
                4 + plan.organisation,
                plan.pk,
                1 if plan.body == "A" else 2,
                name_ja,
                name_en,
                plan.level,
                self.scope_text(plan),
                self.catalogue.version,
                issued,
                issued + relativedelta(months=months),
                plan.assessor,
                revoked_at,
                "管理策の重大な不備が判明したため。" if revoked_at else "",
                plan.assessor if revoked_at else None,
                "",
            )


def corporate_number(serial: int) -> str:
    """A well-formed 13-digit corporate number (check digit first), unique per serial."""
    base = f"{700_000_000_000 + serial:012d}"
    total = sum(
        int(digit) * (1 if position % 2 else 2)
        for position, digit in enumerate(reversed(base), start=1)
    )
    return f"{9 - total % 9}{base}"


# --- Loading --------------------------------------------------------------------------------


def load(database: dict) -> dict:
    from django.core.management import call_command
    from django.core.management.color import no_style
    from django.db import connection, transaction
    from django.utils import timezone
    from django_otp.plugins.otp_totp.models import TOTPDevice
    from tqdm import tqdm

    from mamori.accounts.models import User
    from mamori.assessments.models import Answer, Assessment, Decision, Mark
    from mamori.catalogue.services import load_bundled
    from mamori.certificates.models import Certificate
    from mamori.organisations.models import Membership, Organisation

    started = time.perf_counter()
    timings: dict[str, float] = {}

    def step(name: str, since: float) -> float:
        timings[name] = round(time.perf_counter() - since, 1)
        print(f"  {name}: {timings[name]:.1f} s", flush=True)
        return time.perf_counter()

    print(f"Recreating database {database['NAME']} ...", flush=True)
    benchdb.recreate_database(database)
    connection.close()
    mark = time.perf_counter()
    call_command("migrate", interactive=False, verbosity=0)
    mark = step("migrate", mark)
    loaded = {catalogue.version: catalogue for catalogue, _outcome in load_bundled()}
    # The figures in bench/README.md were measured on this edition: keep runs comparable.
    if BENCH_CATALOGUE not in loaded:
        sys.exit(f"Expected the bundled catalogue {BENCH_CATALOGUE}, found {sorted(loaded)}")
    catalogue = loaded[BENCH_CATALOGUE]
    mark = step(f"catalogue {catalogue.version}", mark)

    scheme = Scheme(catalogue, timezone.now())
    print(f"  catalogue {catalogue.version}: {len(scheme.questions)} questions", flush=True)
    with connection.cursor() as cursor:
        # The data is generated consistent and the load is repeatable: no need to wait for WAL.
        cursor.execute("SET synchronous_commit = off")

    with transaction.atomic():
        organisations = list(scheme.organisations())
        copy_rows(
            Organisation,
            "id created_at updated_at name_ja name_en category corporate_number country",
            ((*row, "JP") for row in organisations),
        )
        users, memberships, roster = scheme.people()
        copy_rows(
            User,
            (
                "id password is_superuser username first_name last_name email is_staff is_active "
                "date_joined display_name language"
            ),
            users,
        )
        copy_rows(
            Membership,
            "id created_at updated_at user organisation role",
            memberships,
        )
    mark = step(f"{len(organisations):,} organisations, {len(users):,} users", mark)

    plans = scheme.plan(roster)
    with transaction.atomic():
        copy_rows(
            Assessment,
            (
                "id created_at updated_at organisation catalogue certification_body assessor "
                "level state round started_by complete_by submitted_at feedback_due decided_at "
                "declared_by declared_name declared_title declared_at declared_digest "
                "answers_digest"
            ),
            tqdm(
                scheme.assessment_rows(plans, roster),
                total=len(plans),
                desc="assessments",
                unit="",
                mininterval=1,
            ),
        )
    mark = step(f"{len(plans):,} assessments", mark)

    with transaction.atomic(), tqdm(total=len(plans), desc="answers", mininterval=1) as bar:
        answers = copy_rows(
            Answer,
            "id assessment question value version updated_by updated_at",
            scheme.answer_rows(plans, roster, bar),
        )
    mark = step(f"{answers:,} answers", mark)

    with transaction.atomic(), tqdm(total=len(plans), desc="marks", mininterval=1) as bar:
        marks = copy_rows(
            Mark,
            "id answer round assessor verdict comment answer_version updated_at",
            scheme.mark_rows(plans, bar),
        )
    mark = step(f"{marks:,} marks", mark)

    names = {row[0]: (row[3], row[4]) for row in organisations}
    with transaction.atomic():
        decisions = copy_rows(
            Decision,
            "id assessment round outcome summary assessor decided_at report_pdf report_pdf_en",
            scheme.decision_rows(plans),
        )
        certificates = copy_rows(
            Certificate,
            (
                "id number organisation assessment certification_body organisation_name_ja "
                "organisation_name_en level scope_text catalogue_version issued_on expires_on "
                "issued_by revoked_at revoked_reason revoked_by pdf"
            ),
            scheme.certificate_rows(plans, names),
        )
    mark = step(f"{decisions:,} decisions, {certificates:,} certificates", mark)

    with connection.cursor() as cursor:
        models = [Organisation, User, Membership, Assessment, Answer, Mark, Decision, Certificate]
        for statement in connection.ops.sequence_reset_sql(no_style(), models):
            cursor.execute(statement)
    # Assessors and the scheme owner must pass MFA: give them a confirmed TOTP device.
    for user in User.objects.filter(memberships__role__in=("assessor", "scheme_owner")).distinct():
        TOTPDevice.objects.create(user=user, name="bench", confirmed=True)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")  # fresh statistics, as autovacuum would leave them
    step("sequences, MFA devices, VACUUM ANALYZE", mark)
    # Measure on a fresh connection: synchronous_commit must be back to the server's default.
    connection.close()
    timings["total"] = round(time.perf_counter() - started, 1)
    print(f"Loaded in {timings['total']:.1f} s", flush=True)
    return timings


def counts() -> dict:
    from django.db.models import Count

    from mamori.accounts.models import User
    from mamori.assessments.models import Answer, Assessment, Decision, Mark
    from mamori.catalogue.models import Question
    from mamori.certificates.models import Certificate
    from mamori.organisations.models import Organisation

    by_state = dict(
        Assessment.objects.order_by().values_list("state").annotate(n=Count("pk")).order_by()
    )
    return {
        "organisations": Organisation.objects.count(),
        "users": User.objects.count(),
        "catalogue_questions": Question.objects.count(),
        "assessments": Assessment.objects.count(),
        "assessments_by_state": dict(sorted(by_state.items())),
        "answers": Answer.objects.count(),
        "marks": Mark.objects.count(),
        "decisions": Decision.objects.count(),
        "certificates": Certificate.objects.count(),
    }


# --- Measuring ------------------------------------------------------------------------------


@dataclass
class Targets:
    assessor: object
    applicant: object
    passed_applicant: object
    full: object
    sparse: object
    valid: object
    expired: object
    revoked: object
    queue_pages: int


def find_targets() -> Targets:
    from django.db.models import Count
    from django.utils import timezone

    from mamori.accounts.models import User
    from mamori.assessments.models import Assessment, State
    from mamori.assessments.views import QUEUE_PAGE_SIZE
    from mamori.certificates.models import Certificate
    from mamori.organisations.models import Membership, Role

    assessor = User.objects.get(username="ada")
    in_review = (
        Assessment.objects.filter(assessor=assessor, state=State.IN_REVIEW)
        .annotate(answer_count=Count("answers", distinct=True))
        .order_by("answer_count", "pk")
    )
    sparse = in_review.first()
    full = (
        in_review.filter(organisation=sparse.organisation)
        .annotate(mark_count=Count("answers__marks", distinct=True))
        .order_by("-answer_count", "-mark_count", "pk")
        .first()
    )

    def admin_of(assessment):
        return Membership.objects.get(
            organisation_id=assessment.organisation_id, role=Role.APPLICANT_ADMIN
        ).user

    today = timezone.localdate()
    certificates = Certificate.objects.select_related("assessment").order_by("pk")
    valid = certificates.currently_valid(today).last()
    mine = Assessment.objects.filter(
        assessor=assessor,
        state__in=(State.SUBMITTED, State.RESUBMITTED, State.IN_REVIEW, State.CLARIFICATION),
    ).count()
    return Targets(
        assessor=assessor,
        applicant=admin_of(full),
        passed_applicant=admin_of(valid.assessment),
        full=full,
        sparse=sparse,
        valid=valid,
        expired=certificates.filter(revoked_at__isnull=True, expires_on__lt=today).last(),
        revoked=certificates.filter(revoked_at__isnull=False).last(),
        queue_pages=max(1, math.ceil(mine / QUEUE_PAGE_SIZE)),
    )


def client_for(user=None):
    """A test client signed in as ``user`` with the MFA step done (as tests/conftest.py does),
    or an anonymous one."""
    from django.test import Client
    from django_otp.plugins.otp_totp.models import TOTPDevice

    client = Client()
    if user is not None:
        client.force_login(user)
        device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
        if device is not None:
            session = client.session
            session["otp_device_id"] = device.persistent_id
            session.save()
    return client


def fetch(client, url: str, expect: str) -> int:
    """GET ``url``; fail loudly unless it answers 200 with ``expect`` in the body. Returns the
    number of SQL queries it ran."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    body = response.content.decode()
    if response.status_code != 200 or expect not in body:
        sys.exit(f"GET {url} answered {response.status_code} without {expect!r}")
    return len(queries.captured_queries)


def time_page(client, url: str, expect: str, requests: int, warmup: int) -> dict:
    for _ in range(warmup):
        fetch(client, url, expect)
    queries = fetch(client, url, expect)
    samples = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            sys.exit(f"GET {url} answered {response.status_code} during the timed run")
    samples.sort()
    return {
        "median_ms": round(statistics.median(samples), 1),
        "p95_ms": round(statistics.quantiles(samples, n=100, method="inclusive")[94], 1),
        "max_ms": round(samples[-1], 1),
        "queries": queries,
        "requests": requests,
    }


def measure(targets: Targets, requests: int, warmup: int) -> tuple[list[dict], list[dict]]:
    from django.urls import reverse

    assessor = client_for(targets.assessor)
    applicant = client_for(targets.applicant)
    passed_applicant = client_for(targets.passed_applicant)
    passed = targets.valid.assessment
    public = client_for(None)
    full, sparse = targets.full, targets.sparse
    valid = targets.valid.number
    pages = [
        ("assessor queue /review/", assessor, reverse("assessments:queue"), 'id="queue"'),
        (
            f"assessor queue, last page ({targets.queue_pages})",
            assessor,
            reverse("assessments:queue") + f"?page={targets.queue_pages}",
            'id="queue"',
        ),
        (
            "assessor queue, whole body (?show=all)",
            assessor,
            reverse("assessments:queue") + "?show=all",
            'id="queue"',
        ),
        (
            f"review page {full.reference}",
            assessor,
            reverse("assessments:review", args=[full.pk]),
            "A10.11",
        ),
        (
            f"applicant assessment page {full.reference}",
            applicant,
            reverse("assessments:detail", args=[full.pk]),
            full.reference,
        ),
        (
            f"applicant assessment page {passed.reference} (passed)",
            passed_applicant,
            reverse("assessments:detail", args=[passed.pk]),
            valid,
        ),
        (
            "applicant section page A7 (20 questions)",
            applicant,
            reverse("assessments:section", args=[full.pk, "A7"]),
            "A7.20",
        ),
        (
            "applicant section page A2 (inventories)",
            applicant,
            reverse("assessments:section", args=[full.pk, "A2"]),
            "A2.13",
        ),
        ("public verify HTML", public, reverse("certificates:verify", args=[valid]), valid),
        (
            "public verify JSON API",
            public,
            reverse("api-public-certificate", args=[valid]),
            valid,
        ),
    ]
    results = []
    for name, client, url, expect in pages:
        result = {"page": name, "url": url, **time_page(client, url, expect, requests, warmup)}
        results.append(result)
        print(
            f"  {name:<44} median {result['median_ms']:>7.1f} ms  p95 {result['p95_ms']:>7.1f}"
            f"  max {result['max_ms']:>7.1f}  queries {result['queries']:>3}",
            flush=True,
        )

    # The same pages on an assessment with five answers and one with every answer marked, and
    # the verification pages for a valid, an expired and a revoked certificate.
    constancy = []
    sparse_count, full_count = sparse.answers.count(), full.answers.count()
    for name, client, route, code, expect in (
        ("review page", assessor, "assessments:review", None, "<h1>"),
        ("applicant assessment page", applicant, "assessments:detail", None, "<h1>"),
        ("section page A7", applicant, "assessments:section", "A7", "A7.20"),
        ("section page A2", applicant, "assessments:section", "A2", "A2.13"),
    ):
        counted = {}
        for label, assessment in (("few", sparse), ("all", full)):
            args = [assessment.pk, code] if code else [assessment.pk]
            fetch(client, reverse(route, args=args), expect)  # warm per-process caches
            counted[label] = fetch(client, reverse(route, args=args), expect)
        constancy.append(
            {
                "page": name,
                f"{sparse_count} answers": counted["few"],
                f"{full_count} answers": counted["all"],
                "constant": counted["few"] == counted["all"],
            }
        )
    queue = reverse("assessments:queue")
    first = fetch(assessor, queue, 'id="queue"')
    last = fetch(assessor, f"{queue}?page={targets.queue_pages}", 'id="queue"')
    constancy.append(
        {
            "page": "queue page 1 / last page",
            "first": first,
            "last": last,
            "constant": first == last,
        }
    )
    for name, route in (("verify HTML", "certificates:verify"), ("verify JSON", None)):
        counted = {}
        for label, certificate in (
            ("valid", targets.valid),
            ("expired", targets.expired),
            ("revoked", targets.revoked),
        ):
            url = (
                reverse(route, args=[certificate.number])
                if route
                else reverse("api-public-certificate", args=[certificate.number])
            )
            counted[label] = fetch(public, url, certificate.number)
        constancy.append({"page": name, **counted, "constant": len(set(counted.values())) == 1})
    return results, constancy


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--reuse", action="store_true", help="keep the existing bench data (skip the load)"
    )
    parser.add_argument("--requests", type=int, default=200, help="timed requests per page")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests per page first")
    args = parser.parse_args(argv)

    configure_environment()
    import django

    django.setup()
    database = check_database()

    from django.db import connection

    if args.reuse:
        from django.core.management import call_command

        call_command("migrate", interactive=False, verbosity=0)  # e.g. a new index
        timings = None
    else:
        timings = load(database)

    data = counts()
    if not data["answers"]:
        sys.exit("The bench database is empty: run without --reuse first.")
    print("Data set:")
    for key, value in data.items():
        print(f"  {key}: {value:,}" if isinstance(value, int) else f"  {key}: {value}")

    targets = find_targets()
    print(
        f"Measuring {args.requests} requests per page after {args.warmup} warm-up requests "
        f"(assessor {targets.assessor.username}, applicant {targets.applicant.username}):",
        flush=True,
    )
    load_before = os.getloadavg()
    results, constancy = measure(targets, args.requests, args.warmup)
    load_after = os.getloadavg()
    # Timings are wall-clock: other work on the machine inflates them; say how busy it was.
    print(
        f"Load average (1 min) before/after measuring: {load_before[0]:.2f} / "
        f"{load_after[0]:.2f} on {os.cpu_count()} CPUs"
    )

    print("Query counts against the number of answers:")
    for row in constancy:
        cells = "  ".join(f"{k}: {v}" for k, v in row.items() if k not in ("page", "constant"))
        print(f"  {row['page']:<28} {cells}  {'constant' if row['constant'] else 'GROWS'}")

    slow = [r["page"] for r in results if r["median_ms"] >= TARGET_MEDIAN_MS]
    growing = [row["page"] for row in constancy if not row["constant"]]
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        server = cursor.fetchone()[0]
    report = {
        "benchmark": "scheme_core",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in load_after],
            "python": platform.python_version(),
            "postgresql": server,
        },
        "load_seconds": timings,
        "data": data,
        "requests_per_page": args.requests,
        "warmup_per_page": args.warmup,
        "target_median_ms": TARGET_MEDIAN_MS,
        "pages": results,
        "query_constancy": constancy,
        "ok": not slow and not growing,
    }
    RESULTS_FILE.parent.mkdir(parents=True, exist_ok=True)
    RESULTS_FILE.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    print(f"Results written to {RESULTS_FILE.relative_to(ROOT)}")
    if slow or growing:
        print(f"Targets missed: slow {slow}, growing query counts {growing}")
        return 1
    print(f"All pages under {TARGET_MEDIAN_MS:.0f} ms median; query counts constant.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
