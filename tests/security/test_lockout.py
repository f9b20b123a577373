"""Login lock-out in tiers, keyed on the real client address.

Behind a reverse proxy every request comes from the proxy's address. Five failures from one
address used to lock every account from it: behind nginx, a global lock-out. Now an account is
locked from one address at the first limit and from everywhere at the account limit; an address
is locked for every account only at a higher limit; and the proxy's ``X-Forwarded-For`` counts
only when the request comes from a configured proxy.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client, RequestFactory, override_settings

from mamori.core.client_address import client_address, parse_networks
from tests.conftest import PASSWORD, World, make_user

pytestmark = pytest.mark.django_db

PROXY = "127.0.0.1"


@pytest.fixture
def people(db):
    world = World()
    for user in (world.admin, world.contributor):
        user.set_password(PASSWORD)
        user.save(update_fields=["password"])
    return world


@pytest.fixture
def small_limits():
    """Smaller limits of the same shape, for the tests that reach the address limit (fifty
    sign-ins take seconds): the tiers read their limits at each attempt."""
    with override_settings(
        LOGIN_FAILURE_LIMIT=3, LOGIN_ACCOUNT_FAILURE_LIMIT=5, LOGIN_ADDRESS_FAILURE_LIMIT=8
    ):
        yield


def login(username: str, password: str, address: str, forwarded: str | None = None):
    meta = {"REMOTE_ADDR": address}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    return Client(**meta).post("/accounts/login/", {"username": username, "password": password})


def fail(times: int, username: str, address: str, forwarded: str | None = None) -> list[int]:
    return [login(username, "wrong-password", address, forwarded).status_code for _ in range(times)]


def test_the_default_limits_grow_from_account_and_address_to_address():
    limits = (
        settings.LOGIN_FAILURE_LIMIT,
        settings.LOGIN_ACCOUNT_FAILURE_LIMIT,
        settings.LOGIN_ADDRESS_FAILURE_LIMIT,
    )
    assert limits == (5, 10, 50)


def test_an_account_is_locked_from_one_address_at_the_first_limit(people):
    limit = settings.LOGIN_FAILURE_LIMIT
    assert fail(limit, "alice", "198.51.100.1") == [200] * (limit - 1) + [429]
    # The right password from that address is refused now ...
    locked = login("alice", PASSWORD, "198.51.100.1")
    assert locked.status_code == 429
    assert settings.SESSION_COOKIE_NAME not in locked.cookies
    assert "accounts/locked_out.html" in [t.name for t in locked.templates]
    # ... but alice elsewhere, and carol from the same address, sign in.
    assert login("carol", PASSWORD, "198.51.100.1").status_code == 302
    assert login("alice", PASSWORD, "192.0.2.10").status_code == 302


def test_an_account_is_locked_from_everywhere_at_the_account_limit(people, small_limits):
    limit = settings.LOGIN_ACCOUNT_FAILURE_LIMIT
    # One failure from each of many addresses: no address reaches any limit of its own.
    codes = [login("alice", "wrong", f"198.51.100.{n}").status_code for n in range(1, limit + 1)]
    assert codes == [200] * (limit - 1) + [429]
    assert login("alice", PASSWORD, "203.0.113.7").status_code == 429
    # The lock is on alice, not on the addresses used.
    assert login("carol", PASSWORD, "198.51.100.1").status_code == 302


def test_an_address_is_locked_for_every_account_at_the_address_limit(people, small_limits):
    limit = settings.LOGIN_ADDRESS_FAILURE_LIMIT
    # A different user name each time: no account reaches a limit.
    codes = [login(f"guess{n}", "wrong", "198.51.100.9").status_code for n in range(limit)]
    assert codes == [200] * (limit - 1) + [429]
    locked = login("carol", PASSWORD, "198.51.100.9")
    assert locked.status_code == 429
    assert settings.SESSION_COOKIE_NAME not in locked.cookies
    # The lock is on the address: carol signs in from elsewhere.
    assert login("carol", PASSWORD, "192.0.2.55").status_code == 302


def test_many_users_behind_one_untrusted_address_do_not_lock_each_other(people):
    """What a proxy that is not configured as trusted (or an office NAT) looks like: alice's
    failures lock alice there, and nobody else until the address limit."""
    shared = "203.0.113.50"
    assert fail(settings.LOGIN_FAILURE_LIMIT, "alice", shared)[-1] == 429
    others = [make_user(f"member{n}", password=PASSWORD) for n in range(3)]
    for user in [people.contributor, *others]:
        assert login(user.username, PASSWORD, shared).status_code == 302, user


def test_a_successful_login_does_not_clear_the_address_count_of_others(people, small_limits):
    shared = "203.0.113.60"
    limit = settings.LOGIN_ADDRESS_FAILURE_LIMIT
    codes = [login(f"guess{n}", "wrong", shared).status_code for n in range(limit - 1)]
    assert set(codes) == {200}
    # An honest sign-in from the same address (resetting carol's own failures only) ...
    assert login("carol", PASSWORD, shared).status_code == 302
    # ... leaves the address one failure from its limit.
    assert login("guess-last", "wrong", shared).status_code == 429


@override_settings(TRUSTED_PROXIES=[PROXY])
def test_behind_a_trusted_proxy_each_client_has_its_own_count(people, small_limits):
    """nginx on loopback, forwarding the client's address: alice's failures lock alice at her
    address; carol, behind the same proxy, is unaffected; so is alice at another address."""
    limit = settings.LOGIN_FAILURE_LIMIT
    assert fail(limit, "alice", PROXY, "198.51.100.20")[-1] == 429
    assert login("alice", PASSWORD, PROXY, "198.51.100.20").status_code == 429
    assert login("carol", PASSWORD, PROXY, "198.51.100.21").status_code == 302
    assert login("alice", PASSWORD, PROXY, "198.51.100.22").status_code == 302
    # Many clients failing behind the proxy never add up to a lock of the proxy's address.
    for n in range(settings.LOGIN_ADDRESS_FAILURE_LIMIT):
        assert login(f"guess{n}", "wrong", PROXY, f"192.0.2.{n + 1}").status_code == 200
    assert login("carol", PASSWORD, PROXY, "198.51.100.23").status_code == 302


@override_settings(TRUSTED_PROXIES=[PROXY])
def test_a_forged_forwarded_address_from_an_untrusted_client_is_ignored(people):
    """A client that sends its own X-Forwarded-For, directly or through the proxy, cannot spread
    its failures over invented addresses."""
    limit = settings.LOGIN_FAILURE_LIMIT
    direct = [
        login("alice", "wrong", "198.51.100.30", f"10.0.0.{n}").status_code for n in range(limit)
    ]
    assert direct[-1] == 429
    assert login("alice", PASSWORD, "198.51.100.30", "10.0.0.99").status_code == 429

    # Through the proxy, the forged part is on the left; nginx appends the real address.
    through = [
        login("carol", "wrong", PROXY, f"10.0.1.{n}, 198.51.100.31").status_code
        for n in range(limit)
    ]
    assert through[-1] == 429
    assert login("carol", PASSWORD, PROXY, "10.0.1.99, 198.51.100.31").status_code == 429
    assert login("carol", PASSWORD, PROXY, "198.51.100.32").status_code == 302


def test_the_admin_has_no_login_of_its_own(people):
    """The admin sends everyone to the throttled login page: a password posted to the admin's
    login signs no one in and is no way around a lock-out."""
    people.admin.is_staff = True
    people.admin.save(update_fields=["is_staff"])
    assert fail(settings.LOGIN_FAILURE_LIMIT, "alice", "198.51.100.40")[-1] == 429
    client = Client(REMOTE_ADDR="198.51.100.40")
    posted = client.post("/admin/login/", {"username": "alice", "password": PASSWORD})
    assert posted.status_code == 302
    assert posted.url.startswith("/accounts/login/?next=/admin/")
    assert settings.SESSION_COOKIE_NAME not in posted.cookies
    assert client.get("/admin/").status_code == 302
    # Following the admin's redirect leads to the same lock.
    locked = client.post(posted.url, {"username": "alice", "password": PASSWORD})
    assert locked.status_code == 429


# --- The client address itself ----------------------------------------------------------------


def address_of(remote: str, forwarded: str | None = None) -> str:
    meta = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    return client_address(RequestFactory().get("/", **meta))


@pytest.mark.parametrize(
    ("proxies", "remote", "forwarded", "expected"),
    [
        # No proxy configured (the default): the header is never read.
        ([], "198.51.100.1", "10.9.9.9", "198.51.100.1"),
        ([], "127.0.0.1", "10.9.9.9", "127.0.0.1"),
        # From a trusted proxy: the right-most hop that is not a proxy.
        (["127.0.0.1"], "127.0.0.1", "198.51.100.2", "198.51.100.2"),
        (["127.0.0.1"], "127.0.0.1", "10.0.0.1, 198.51.100.2", "198.51.100.2"),
        (["127.0.0.1", "10.0.0.0/8"], "127.0.0.1", "198.51.100.3, 10.1.2.3", "198.51.100.3"),
        # From an address that is not a proxy: the header is ignored.
        (["127.0.0.1"], "198.51.100.4", "10.0.0.1", "198.51.100.4"),
        # A trusted proxy that forwarded nothing usable counts as itself.
        (["127.0.0.1"], "127.0.0.1", None, "127.0.0.1"),
        (["127.0.0.1"], "127.0.0.1", "", "127.0.0.1"),
        (["127.0.0.1"], "127.0.0.1", "unknown", "127.0.0.1"),
        (["127.0.0.1"], "127.0.0.1", "198.51.100.5, not-an-address", "127.0.0.1"),
        # Only proxies in the chain: the request is the proxy's own.
        (["127.0.0.0/8"], "127.0.0.1", "127.0.0.2", "127.0.0.1"),
        # IPv6, and an IPv4 client written as IPv6.
        (["::1"], "::1", "2001:db8::7", "2001:db8::7"),
        (["::1"], "::1", "::ffff:198.51.100.6", "198.51.100.6"),
        ([], "::ffff:198.51.100.7", None, "198.51.100.7"),
    ],
)
def test_client_address(proxies, remote, forwarded, expected):
    with override_settings(TRUSTED_PROXIES=proxies):
        assert address_of(remote, forwarded) == expected


def test_malformed_proxy_entries_are_named():
    assert [str(n) for n in parse_networks(["127.0.0.1", "10.0.0.0/8", " ::1 "])] == [
        "127.0.0.1/32",
        "10.0.0.0/8",
        "::1/128",
    ]
    with pytest.raises(ValueError, match="'nginx' is not an IP address or CIDR range"):
        parse_networks(["127.0.0.1", "nginx"])
