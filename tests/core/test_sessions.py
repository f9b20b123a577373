"""A session in use stays alive (the idle timeout slides), written at most once a minute; public
pages and stale cookies create nothing (core.middleware.SlidingSessionMiddleware)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from mamori.core.middleware import REFRESHED_KEY, SESSION_REFRESH_SECONDS
from tests.conftest import World, client_for

pytestmark = pytest.mark.django_db


def _row(client: Client) -> Session:
    return Session.objects.get(session_key=client.cookies[settings.SESSION_COOKIE_NAME].value)


def _session_writes(queries) -> list[str]:
    return [
        query["sql"]
        for query in queries
        if "django_session" in query["sql"] and query["sql"].lstrip().upper().startswith("UPDATE")
    ]


def test_a_session_in_use_slides_its_expiry_with_one_write_a_minute():
    world = World()
    client = client_for(world.admin)
    first = client.get("/assessments/")
    assert first.status_code == 200
    row = _row(client)
    stamped = row.get_decoded()[REFRESHED_KEY]
    # The first request after signing in moved the expiry on: a full idle period from now.
    left = row.expire_date - timezone.now()
    assert dt.timedelta(minutes=settings.SESSION_IDLE_MINUTES - 1) < left
    assert first.cookies[settings.SESSION_COOKIE_NAME]["max-age"] == settings.SESSION_COOKIE_AGE

    # Within the minute: pages answer, nothing is written, no new cookie.
    with CaptureQueriesContext(connection) as queries:
        again = client.get("/assessments/")
    assert again.status_code == 200
    assert _session_writes(queries.captured_queries) == []
    assert settings.SESSION_COOKIE_NAME not in again.cookies
    assert _row(client).expire_date == row.expire_date

    # A minute on (the stamp set back as time would have moved it): written once, expiry later.
    session = client.session
    session[REFRESHED_KEY] = stamped - SESSION_REFRESH_SECONDS
    session.save()
    before = _row(client).expire_date
    with CaptureQueriesContext(connection) as queries:
        later = client.get("/assessments/")
    assert later.status_code == 200
    assert len(_session_writes(queries.captured_queries)) == 1
    assert _row(client).expire_date >= before
    assert _row(client).get_decoded()[REFRESHED_KEY] >= stamped
    assert later.cookies[settings.SESSION_COOKIE_NAME]["max-age"] == settings.SESSION_COOKIE_AGE


def test_public_pages_and_stale_cookies_create_no_session():
    anonymous = Client()
    for path in ("/register/", "/healthz", "/accounts/login/"):
        response = anonymous.get(path)
        assert response.status_code == 200, path
        assert settings.SESSION_COOKIE_NAME not in response.cookies, path
    assert not Session.objects.exists()

    stale = Client()
    stale.cookies[settings.SESSION_COOKIE_NAME] = "no-such-session-key-0123456789abcdef"
    response = stale.get("/register/")
    assert response.status_code == 200
    assert not Session.objects.exists()
    assert not response.cookies.get(settings.SESSION_COOKIE_NAME, {}).get("max-age")


def test_an_expired_session_is_not_brought_back_by_the_refresh():
    world = World()
    client = client_for(world.admin)
    assert client.get("/assessments/").status_code == 200
    Session.objects.filter(expire_date__gt=timezone.now()).update(
        expire_date=timezone.now() - dt.timedelta(seconds=1)
    )
    response = client.get("/assessments/")
    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/")
    assert not Session.objects.filter(expire_date__gt=timezone.now()).exists()
