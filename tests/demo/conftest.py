import io
from types import SimpleNamespace

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import translation

from tests.conftest import built_once


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
    English, into a throw-away var directory); what a test changes is undone after it."""
    var_dir = tmp_path_factory.mktemp("demo-var")

    def build() -> SimpleNamespace:
        out = io.StringIO()
        with override_settings(VAR_DIR=var_dir), translation.override("en"):
            call_command("demo", stdout=out)
        return SimpleNamespace(
            output=out.getvalue(),
            var_dir=var_dir,
            credentials_file=var_dir / "demo-credentials.json",
        )

    with built_once(django_db_blocker, build) as built:
        yield built
