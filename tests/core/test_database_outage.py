"""A database that cannot be reached (a restart, a failover) is a temporary outage: the site
answers 503 with Retry-After, as JSON on the API and as a page elsewhere, instead of a 500 or a
bare server error. The connection really fails here: PostgreSQL on a port where nothing
listens, or an SQLite file in a folder that does not exist."""

from __future__ import annotations

import socket

import pytest
from django.db import connection
from django.test import Client


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def unreachable_database(transactional_db, tmp_path):
    # Outside any transaction (transactional_db), so the connection can be closed and pointed
    # elsewhere, and pointed back before the test database is emptied.
    saved = dict(connection.settings_dict)
    connection.close()
    if connection.vendor == "postgresql":
        connection.settings_dict.update(HOST="127.0.0.1", PORT=str(closed_port()))
    else:
        connection.settings_dict["NAME"] = str(tmp_path / "missing" / "mamori.sqlite3")
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/verify/CE-2026-ABCDEFGH", "page"),
        ("/api/public/certificates/CE-2026-ABCDEFGH", "json"),
        ("/api/evidence/uploads/1/", "json"),
    ],
)
def test_an_unreachable_database_is_a_503_to_try_again(unreachable_database, path, kind):
    client = Client(raise_request_exception=False, HTTP_AUTHORIZATION="Token mamori_x")
    response = client.get(path, secure=True)
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    if kind == "json":
        assert response.json()["code"] == "unavailable"
    else:
        body = response.content.decode()
        assert "Temporarily unavailable" in body
        assert "一時的に利用できません" in body
