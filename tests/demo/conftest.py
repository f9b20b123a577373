import pytest


@pytest.fixture(autouse=True)
def _fresh_index_cache():
    """Each test starts without a cached advisory index, as a new process would: test
    databases are rolled back, so an index generation number can come back with other data."""
    from mamori.advisories import services

    services.forget_index()
    yield
    services.forget_index()
