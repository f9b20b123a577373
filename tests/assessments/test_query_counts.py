"""Query-count guards for the pages people wait for.

The review, assessment, section, queue and public verification pages must run the same number of
SQL queries whether an assessment has five answers or every question answered and marked: a
query per answer would be invisible here and ruinous with the 2 million answers that
``bench/scheme_core.py`` loads. The bench measures the same pages at that scale.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from unittest import mock

import pytest
from django.core.cache import cache
from django.db import connection
from django.db.models import Model
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from mamori.assessments import services
from mamori.assessments.models import Answer, Assessment, Mark, State
from mamori.catalogue import samples
from mamori.catalogue.models import Question
from tests.conftest import World, built_once, client_for

pytestmark = pytest.mark.django_db

MAX_QUERIES = 25
FEW = 5
SECTION = "A7"  # the largest section (22 questions): the five sparse answers are all in it


def _count(client: Client, url: str) -> int:
    """Queries of one GET, after a first GET that warms per-process caches (content types,
    translations), so both sides of a comparison are counted the same way."""
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(queries.captured_queries)


def _sparse_in_review(world) -> Assessment:
    """ada's submission under review with five answers, each marked compliant.

    A real submission needs every required answer, so the state is set directly; the answers
    and marks themselves go through the workflow services."""
    assessment = world.start()
    questions = [
        q
        for q in services.Snapshot.load(assessment).questions
        if q.section.code == SECTION and q.is_scored
    ][:FEW]
    for question in questions:
        value = samples.compliant_value(question.rules)
        services.save_answer(
            world.admin, world.access(world.admin), assessment.pk, question.qid, value, 0
        )
    Assessment.objects.filter(pk=assessment.pk).update(
        state=State.SUBMITTED, submitted_at=timezone.now(), assessor=world.assessor
    )
    for question in questions:
        services.mark_answer(
            world.assessor,
            world.access(world.assessor),
            assessment.pk,
            question.qid,
            "compliant",
            "",
        )
    assessment.refresh_from_db()
    assert assessment.state == State.IN_REVIEW
    assert Mark.objects.filter(answer__assessment=assessment).count() == FEW
    return assessment


def _pair(world) -> tuple[Assessment, Assessment]:
    """(five answers, every answer answered and marked), both assigned to ada and in review."""
    sparse = _sparse_in_review(world)
    full = world.mark_all(world.submitted())
    questions = Question.objects.filter(catalogue=full.catalogue)
    assert full.state == State.IN_REVIEW
    assert full.answers.count() == questions.count()
    scored = questions.filter(scoring="scored").count()
    assert Mark.objects.filter(answer__assessment=full).count() == scored
    return sparse, full


@pytest.fixture(scope="module")
def scene(django_db_setup, django_db_blocker):
    """The personas and the pair, built once for the module: every test here adds to them."""

    def build():
        world = World()
        return world, _pair(world)

    with built_once(django_db_blocker, build) as built:
        yield built


@pytest.fixture
def world(scene, db):
    return scene[0]


@pytest.fixture
def pair(scene, db):
    return scene[1]


@pytest.mark.parametrize(
    ("route", "who", "section"),
    [
        ("assessments:review", "assessor", None),
        ("assessments:detail", "admin", None),
        ("assessments:detail", "assessor", None),
        ("assessments:section", "admin", SECTION),
        ("assessments:section", "admin", "A2"),
    ],
)
def test_assessment_pages_do_not_query_per_answer(
    world, pair, django_assert_num_queries, route, who, section
):
    sparse, full = pair
    client = client_for(getattr(world, who))

    def url(assessment):
        return reverse(route, args=[assessment.pk, section] if section else [assessment.pk])

    with_all = _count(client, url(full))
    assert with_all <= MAX_QUERIES
    client.get(url(sparse))
    with django_assert_num_queries(with_all):
        response = client.get(url(sparse))
    assert response.status_code == 200
    # The pages did show the answers they were counted on.
    if route == "assessments:review":
        body = response.content.decode()
        assert body.count('value="compliant" checked') == FEW


@pytest.mark.parametrize("show", ["mine", "all"])
def test_queue_queries_do_not_grow_with_rows_or_answers(
    world, pair, django_assert_num_queries, show
):
    client = client_for(world.assessor)
    url = reverse("assessments:queue") + f"?show={show}"
    sparse = _sparse_in_review(world)
    fewer_rows = _count(client, url)
    assert fewer_rows <= MAX_QUERIES

    full = world.mark_all(world.submitted())
    waiting = world.submitted()
    with django_assert_num_queries(fewer_rows):
        response = client.get(url)
    body = response.content.decode()
    assert response.status_code == 200
    assert all(a.reference in body for a in (*pair, sparse, full, waiting))


def test_public_verification_never_reads_answers(world, django_assert_num_queries):
    # The public API is throttled per address in the shared cache; start from a clean count.
    cache.clear()
    assessment = world.passed()
    number = assessment.certificate.number
    urls = [
        reverse("certificates:verify", args=[number]),
        reverse("api-public-certificate", args=[number]),
    ]
    public = Client()
    counts = [_count(public, url) for url in urls]
    assert all(count <= MAX_QUERIES for count in counts)

    # The same certificate with all but five answers (and their marks) gone.
    keep = assessment.answers.order_by("pk").values_list("pk", flat=True)[:FEW]
    Answer.objects.filter(assessment=assessment).exclude(pk__in=list(keep)).delete()
    assert assessment.answers.count() == FEW
    for url, count in zip(urls, counts, strict=True):
        with django_assert_num_queries(count):
            response = public.get(url)
        assert response.status_code == 200
        assert number in response.content.decode()


@contextmanager
def rows_loaded() -> Iterator[Counter]:
    """Counts the model instances Django builds from query results, per model."""
    loaded: Counter = Counter()
    original = Model.from_db.__func__

    def counting(cls, db, field_names, values):
        loaded[cls.__name__] += 1
        return original(cls, db, field_names, values)

    with mock.patch.object(Model, "from_db", classmethod(counting)):
        yield loaded


def test_saving_an_answer_reads_only_that_answer(world):
    """Autosave stores one answer at a time: its cost must not grow with the assessment, in
    queries or in rows (it read every question and answer of the assessment before)."""
    draft = world.start()
    questions = services.Snapshot.load(draft).questions
    access = world.access(world.admin)

    def save(question) -> tuple[int, Counter]:
        value = samples.compliant_value(question.rules)
        with CaptureQueriesContext(connection) as queries, rows_loaded() as loaded:
            services.save_answer(world.admin, access, draft.pk, question.qid, value, 0)
        return len(queries.captured_queries), loaded

    first, second, *rest, last = questions
    save(first)  # warms per-process caches
    with_one = save(second)
    for question in rest:
        save(question)
    assert Answer.objects.filter(assessment=draft).count() == len(questions) - 1
    with_all = save(last)
    assert with_all == with_one
    _queries, loaded = with_all
    assert loaded["Question"] == 1
    assert loaded["Answer"] <= 1
    draft.refresh_from_db()
    assert draft.answers_digest == services.answers_digest(services.Snapshot.load(draft).values)
