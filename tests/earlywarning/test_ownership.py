"""Domain ownership by DNS TXT record, against a real DNS server on 127.0.0.1 (dnslib) that the
module starts: the token, where it goes, and every answer the check can meet."""

from __future__ import annotations

import time

import pytest
from django.utils import translation

from mamori.earlywarning.ownership import (
    TOKEN_PREFIX,
    InvalidDomain,
    OwnershipReason,
    check_txt,
    normalise_domain,
    ownership_token,
    txt_record_name,
)

from .localdns import local_dns_server, silent_dns_port

SECRET = b"ownership-secret-for-tests"
BANK = 41
OTHER = 42
DOMAIN = "bank.example.jp"
RECORD = "_mamori.bank.example.jp"


@pytest.fixture(scope="module")
def dns_server():
    with local_dns_server() as server:
        yield server


def check(domain: str, token: str, server, timeout: float = 2.0):
    return check_txt(domain, token, nameserver=server.host, port=server.port, timeout=timeout)


# --- The token and its place ------------------------------------------------------------------


def test_token_is_stable_prefixed_and_url_safe():
    token = ownership_token(SECRET, BANK, DOMAIN)
    assert token == ownership_token(SECRET, BANK, DOMAIN)
    assert token.startswith(TOKEN_PREFIX)
    value = token[len(TOKEN_PREFIX) :]
    assert len(value) == 32
    assert set(value) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    # A str secret is its UTF-8 bytes.
    assert ownership_token(SECRET.decode(), BANK, DOMAIN) == token


def test_token_differs_per_organisation_domain_and_secret():
    tokens = {
        ownership_token(SECRET, BANK, DOMAIN),
        ownership_token(SECRET, OTHER, DOMAIN),
        ownership_token(SECRET, BANK, "www.bank.example.jp"),
        ownership_token(b"another-secret", BANK, DOMAIN),
    }
    assert len(tokens) == 4


def test_token_is_the_same_for_every_spelling_of_the_domain():
    unicode_token = ownership_token(SECRET, BANK, "例え.jp")
    assert ownership_token(SECRET, BANK, "xn--r8jz45g.jp") == unicode_token
    assert ownership_token(SECRET, BANK, " 例え.JP. ") == unicode_token
    assert ownership_token(SECRET, BANK, "Bank.Example.JP.") == ownership_token(
        SECRET, BANK, DOMAIN
    )


@pytest.mark.parametrize(
    ("secret", "organisation_id", "error"),
    [(b"", BANK, ValueError), (SECRET, 0, ValueError), (SECRET, True, TypeError)],
)
def test_token_refuses_callers_mistakes(secret, organisation_id, error):
    with pytest.raises(error):
        ownership_token(secret, organisation_id, DOMAIN)


def test_record_name_is_the_mamori_label_under_the_domain():
    assert txt_record_name("Bank.Example.JP.") == RECORD
    assert txt_record_name("例え.jp") == "_mamori.xn--r8jz45g.jp"


@pytest.mark.parametrize(
    ("domain", "words"),
    [
        ("", "Enter a domain name"),
        ("https://bank.example.jp/", "without https://"),
        ("*.bank.example.jp", "wildcard"),
        ("192.0.2.1", "IP address"),
        ("[2001:db8::1]", "IP address"),
        ("bank example.jp", "not a valid domain name"),
        ("-bank.example.jp", "not a valid domain name"),
        ("bank..example.jp", "not a valid domain name"),
        ("a" * 64 + ".jp", "not a valid domain name"),
        (("abcdefghi." * 26) + "jp", "not a valid domain name"),
        ("10.1.2", "not a valid domain name"),
        ("localhost", "single label"),
    ],
)
def test_nonsense_domains_are_refused_by_name(domain, words):
    with translation.override("en"), pytest.raises(InvalidDomain) as refused:
        normalise_domain(domain)
    assert words in str(refused.value)
    with translation.override("ja"), pytest.raises(InvalidDomain) as refused_ja:
        normalise_domain(domain)
    assert str(refused_ja.value) != str(refused.value)  # translated


# --- Look-ups against the local DNS server ----------------------------------------------------


def test_right_token_is_found(dns_server):
    token = ownership_token(SECRET, BANK, DOMAIN)
    dns_server.serve({RECORD: ["v=spf1 -all", token]})
    result = check(DOMAIN, token, dns_server)
    assert result.found
    assert result.reason is OwnershipReason.FOUND
    assert result.record_name == RECORD
    assert token in result.records
    assert dns_server.resolver.queries == [(RECORD + ".", "udp")]
    with translation.override("en"):
        assert "is verified" in result.message


def test_another_organisations_token_is_wrong(dns_server):
    dns_server.serve({RECORD: [ownership_token(SECRET, OTHER, DOMAIN)]})
    result = check(DOMAIN, ownership_token(SECRET, BANK, DOMAIN), dns_server)
    assert not result.found
    assert result.reason is OwnershipReason.WRONG_TOKEN
    with translation.override("en"):
        assert "another token" in result.message
        assert RECORD in result.message


def test_token_on_the_apex_instead_of_the_label_is_not_enough(dns_server):
    token = ownership_token(SECRET, BANK, DOMAIN)
    dns_server.serve({DOMAIN: [token], RECORD: ["unrelated"]})
    result = check(DOMAIN, token, dns_server)
    assert result.reason is OwnershipReason.WRONG_TOKEN
    with translation.override("en"):
        assert "none is a Mamori verification record" in result.message


def test_truncated_token_is_wrong(dns_server):
    token = ownership_token(SECRET, BANK, DOMAIN)
    dns_server.serve({RECORD: [token[:-3]]})
    assert check(DOMAIN, token, dns_server).reason is OwnershipReason.WRONG_TOKEN


def test_name_without_txt_record(dns_server):
    dns_server.serve({RECORD: []})  # the name exists (NOERROR) and holds no TXT
    result = check(DOMAIN, ownership_token(SECRET, BANK, DOMAIN), dns_server)
    assert result.reason is OwnershipReason.NO_TXT
    assert not result.found
    with translation.override("en"):
        assert "has no TXT record" in result.message


def test_missing_name_is_nxdomain(dns_server):
    dns_server.serve({DOMAIN: ["v=spf1 -all"]})
    result = check(DOMAIN, ownership_token(SECRET, BANK, DOMAIN), dns_server)
    assert result.reason is OwnershipReason.NXDOMAIN
    with translation.override("en"):
        assert "NXDOMAIN" in result.message
    with translation.override("ja"):
        assert RECORD in result.message


def test_multi_string_record_is_joined(dns_server):
    token = ownership_token(SECRET, BANK, DOMAIN)
    dns_server.serve({RECORD: [[token[:12], token[12:30], token[30:]]]})
    result = check(DOMAIN, token, dns_server)
    assert result.found
    assert result.records == (token,)


def test_pasted_quotes_whitespace_and_prefix_case_are_tolerated(dns_server):
    token = ownership_token(SECRET, BANK, DOMAIN)
    pasted = '  "' + "Mamori-Verification=" + token[len(TOKEN_PREFIX) :] + '" '
    dns_server.serve({RECORD: [pasted]})
    assert check(DOMAIN, token, dns_server).found


def test_token_case_matters(dns_server):
    token = ownership_token(SECRET, BANK, DOMAIN)
    dns_server.serve({RECORD: [TOKEN_PREFIX + token[len(TOKEN_PREFIX) :].swapcase()]})
    assert check(DOMAIN, token, dns_server).reason is OwnershipReason.WRONG_TOKEN


def test_unicode_upper_case_and_trailing_dot_query_the_a_label_name(dns_server):
    token = ownership_token(SECRET, BANK, "例え.jp")
    dns_server.serve({"_mamori.xn--r8jz45g.jp": [token]})
    result = check("例え.JP.", token, dns_server)
    assert result.found
    assert dns_server.resolver.queries == [("_mamori.xn--r8jz45g.jp.", "udp")]


def test_large_answer_is_fetched_again_over_tcp(dns_server):
    token = ownership_token(SECRET, BANK, DOMAIN)
    others = [f"service-{number}-verification=" + "x" * 40 for number in range(20)]
    dns_server.serve({RECORD: [*others, token]})
    result = check(DOMAIN, token, dns_server)
    assert result.found
    assert [protocol for _name, protocol in dns_server.resolver.queries] == ["udp", "tcp"]
    assert len(result.records) == 10  # what is kept to show
    assert result.records[0] == token  # the Mamori record first


def test_servfail_is_reported(dns_server):
    dns_server.serve({}, servfail=[RECORD])
    result = check(DOMAIN, ownership_token(SECRET, BANK, DOMAIN), dns_server)
    assert result.reason is OwnershipReason.SERVFAIL
    with translation.override("en"):
        assert "SERVFAIL" in result.message


def test_server_that_never_answers_times_out_in_bounded_time():
    token = ownership_token(SECRET, BANK, DOMAIN)
    with silent_dns_port() as port:
        started = time.monotonic()
        result = check_txt(DOMAIN, token, nameserver="127.0.0.1", port=port, timeout=0.8)
        elapsed = time.monotonic() - started
    assert result.reason is OwnershipReason.TIMEOUT
    assert not result.found
    assert 0.7 < elapsed < 1.3
    with translation.override("en"):
        assert result.message == (
            "The DNS server 127.0.0.1 did not answer within 0.8 seconds; try again later."
        )


def test_callers_mistakes_are_refused_before_any_query():
    token = ownership_token(SECRET, BANK, DOMAIN)
    with pytest.raises(ValueError, match="nameserver must be an IP address"):
        check_txt(DOMAIN, token, nameserver="dns.example.jp", timeout=1)
    with pytest.raises(ValueError, match="must start with"):
        check_txt(DOMAIN, token[len(TOKEN_PREFIX) :], nameserver="127.0.0.1", timeout=1)
    with pytest.raises(InvalidDomain):
        check_txt("not a domain", token, nameserver="127.0.0.1", timeout=1)
