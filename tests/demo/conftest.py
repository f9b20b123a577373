import io
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test import override_settings
from django.utils import translation


@pytest.fixture(autouse=True)
def _fresh_index_cache():
    """Each test starts without a cached advisory index, as a new process would: test
    databases are rolled back, so an index generation number can come back with other data."""
    from mamori.advisories import services

    services.forget_index()
    yield
    services.forget_index()


@pytest.fixture(scope="package")
def demo(django_db_setup, django_db_blocker, tmp_path_factory):
    """The whole demo, loaded once for every test of this package by `mamori demo` itself (in
    English, into a throw-away var directory), inside a transaction rolled back at the end.
    Each test's own transaction nests in it, so what a test changes is undone after it."""
    var_dir = tmp_path_factory.mktemp("demo-var")
    out = io.StringIO()
    with django_db_blocker.unblock(), transaction.atomic():
        with override_settings(VAR_DIR=var_dir), translation.override("en"):
            call_command("demo", stdout=out)
        # Check deferred foreign keys once, now: left pending, PostgreSQL would check all of
        # them again at the end of every test, since each rollback re-arms them.
        connection.check_constraints()
        yield SimpleNamespace(
            output=out.getvalue(),
            var_dir=var_dir,
            credentials_file=var_dir / "demo-credentials.json",
        )
        transaction.set_rollback(True)
