"""Webhooks: refused destinations (SSRF), signatures, the retry schedule, and deliveries to real
HTTP(S) receivers on loopback started by the tests (tests/earlywarning/receivers.py).

``resolve`` is the destination check's parameter for turning a name into addresses; the tests
pass a table of answers (and count the calls) for names that must resolve to given addresses —
nothing of the code under test is replaced.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import random
import socket
import time

import pytest
from django.utils import translation

from mamori.earlywarning.webhooks import (
    EXCERPT_BYTES,
    SIGNATURE_HEADER,
    USER_AGENT,
    DeliveryError,
    Destination,
    DestinationRefused,
    DestinationUnresolved,
    check_destination,
    deliver,
    deliver_async,
    next_attempt_delay,
    nominal_attempt_delay,
    should_disable,
    signature,
    signature_header,
    verify_signature,
)

from .receivers import (
    RECEIVER_NAME,
    closed_port,
    not_http_server,
    receiver,
    silent_listener,
    tls_certificate,
)

SECRET = b"whsec-for-tests-0123456789"
TIMESTAMP = 1_767_225_600  # 2026-01-01T00:00:00Z
BODY = json.dumps({"schema": "mamori.alert/1", "type": "exposure", "id": 7}).encode()
PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"


class Answers:
    """The ``resolve`` parameter: answers from a table, one list per call in turn when given
    several (the last repeats); unknown names do not resolve. Records every call."""

    def __init__(self, table: dict[str, list[str] | list[list[str]]] | None = None) -> None:
        self.table = table or {}
        self.calls: list[str] = []

    def __call__(self, host: str) -> list[str]:
        self.calls.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        answers = self.table[host]
        if answers and isinstance(answers[0], list):
            return answers[min(len(self.calls), len(answers)) - 1]
        return answers


def refusal(url: str, answers: Answers | None = None, **options) -> str:
    with translation.override("en"), pytest.raises(DestinationRefused) as refused:
        check_destination(url, resolve=answers or Answers(), **options)
    return str(refused.value)


# --- Destinations that are accepted -----------------------------------------------------------


def test_public_name_is_accepted_with_every_address_pinned():
    answers = Answers({"hooks.example.com": [PUBLIC_V4, PUBLIC_V6]})
    destination = check_destination("https://hooks.example.com/mamori?org=7", resolve=answers)
    assert destination == Destination(
        url="https://hooks.example.com/mamori?org=7",
        scheme="https",
        host="hooks.example.com",
        port=443,
        target="/mamori?org=7",
        addresses=(PUBLIC_V4, PUBLIC_V6),
        host_is_address=False,
    )
    assert answers.calls == ["hooks.example.com"]


def test_host_is_normalised_case_trailing_dot_idna_and_port():
    answers = Answers({"hooks.example.com": [PUBLIC_V4], "xn--r8jz45g.jp": [PUBLIC_V4]})
    destination = check_destination("HTTPS://Hooks.EXAMPLE.com.:8443", resolve=answers)
    assert destination.url == "https://hooks.example.com:8443/"
    assert destination.host_header == "hooks.example.com:8443"
    assert check_destination("https://例え.jp/フック", resolve=answers).host == "xn--r8jz45g.jp"
    assert answers.calls == ["hooks.example.com", "xn--r8jz45g.jp"]


@pytest.mark.parametrize(
    ("url", "address"),
    [
        (f"https://{PUBLIC_V4}/hook", PUBLIC_V4),
        (f"https://[{PUBLIC_V6}]:8443/hook", PUBLIC_V6),
        (f"https://[::ffff:{PUBLIC_V4}]/", f"::ffff:{PUBLIC_V4}"),  # judged by what it embeds
        ("https://[64:ff9b::5db8:d822]/", "64:ff9b::5db8:d822"),  # NAT64 of the public address
    ],
)
def test_public_address_literals_are_accepted_without_resolving(url, address):
    answers = Answers()
    destination = check_destination(url, resolve=answers)
    assert destination.addresses == (str(ipaddress.ip_address(address)),)
    assert destination.host_is_address
    assert answers.calls == []


# --- Destinations that are refused ------------------------------------------------------------

REFUSED_URLS = [
    # scheme, user information, shape
    ("http://hooks.example.com/", "must start with https://"),
    ("ftp://hooks.example.com/", "must start with https://"),
    ("javascript:alert(1)", "must start with https://"),
    ("hooks.example.com/hook", "must start with https://"),
    ("https://user:pw@hooks.example.com/", "user name or password"),
    ("https://hooks.example.com@127.0.0.1/", "user name or password"),
    ("https://hooks.example.com/#frag", "#fragment"),
    ("https:///path-only", "has no host"),
    ("https://hooks.example.com:0/", "port must be 1 to 65535"),
    ("https://hooks.example.com:70000/", "not a valid URL"),
    ("https://hooks.example.com:port/", "not a valid URL"),
    ("https://hooks.example.com\\@127.0.0.1/", "backslashes"),
    ("https://hooks.example.com/a b", "spaces"),
    ("https://hooks.example.com\t/", "control characters"),
    ("https://hooks.example.com/" + "a" * 2100, "longer than 2048"),
    ("", "Enter the webhook's URL"),
    ("https://hooks_example.com/", "not a valid host name"),
    ("https://%31%32%37.0.0.1/", "not a valid host name"),
    ("https://[fe80::1%25eth0]/", "network interface"),
    ("https://[not-ipv6]/", "not a valid"),
    # IPv4 literals of every private kind
    ("https://127.0.0.1/", "127.0.0.1 is a loopback address"),
    ("https://127.8.9.10:8443/", "loopback address"),
    ("https://10.0.0.1/", "10.0.0.1 is a private network address"),
    ("https://172.16.5.4/", "private network address"),
    ("https://172.31.255.255/", "private network address"),
    ("https://192.168.1.1/", "private network address"),
    ("https://100.64.0.1/", "carrier-grade NAT"),
    ("https://169.254.169.254/latest/meta-data/", "cloud metadata service address"),
    ("https://169.254.170.2/", "cloud metadata service address"),
    ("https://169.254.1.1/", "link-local address"),
    ("https://0.0.0.0/", "unspecified address"),
    ("https://224.0.0.1/", "multicast address"),
    ("https://239.255.255.250/", "multicast address"),
    ("https://240.0.0.1/", "reserved special-purpose"),
    ("https://255.255.255.255/", "reserved special-purpose"),
    ("https://192.0.2.10/", "documentation address"),
    ("https://198.18.0.1/", "benchmarking address"),
    ("https://192.0.0.170/", "reserved special-purpose"),
    # IPv4 in the other forms parsers accept: refused whatever they mean
    ("https://2130706433/", "unusual form (it means 127.0.0.1)"),
    ("https://0x7f.1/", "unusual form (it means 127.0.0.1)"),
    ("https://0x7f000001/", "unusual form (it means 127.0.0.1)"),
    ("https://0177.0.0.1/", "unusual form (it means 127.0.0.1)"),
    ("https://017700000001/", "unusual form (it means 127.0.0.1)"),
    ("https://127.1/", "unusual form (it means 127.0.0.1)"),
    ("https://0xa9.0xfe.0xa9.0xfe/", "unusual form (it means 169.254.169.254)"),
    ("https://1572395042/", "unusual form (it means 93.184.216.34)"),
    ("https://09.0.0.1/", "not a valid host name"),
    ("https://1.2.3.4.5/", "not a valid host name"),
    ("https://256.1.1.1/", "not a valid host name"),
    ("https://hooks.example.123/", "not a valid host name"),
    # IPv6 literals
    ("https://[::1]/", "::1 is a loopback address"),
    ("https://[::]/", "unspecified address"),
    ("https://[fe80::1]/", "link-local address"),
    ("https://[fc00::1]/", "private network address"),
    ("https://[fd12:3456::1]/", "private network address"),
    ("https://[fd00:ec2::254]/", "cloud metadata service address"),
    ("https://[fec0::1]/", "site-local address"),
    ("https://[ff02::1]/", "multicast address"),
    ("https://[2001:db8::1]/", "documentation address"),
    ("https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", "Teredo"),
    ("https://[100::1]/", "not a global unicast address"),
    ("https://[64:ff9b:1::a00:1]/", "private network address"),
    # IPv6 forms of refused IPv4 addresses
    ("https://[::ffff:127.0.0.1]/", "an IPv6 form of 127.0.0.1, a loopback address"),
    ("https://[::ffff:7f00:1]/", "an IPv6 form of 127.0.0.1, a loopback address"),
    ("https://[::ffff:a9fe:a9fe]/", "an IPv6 form of 169.254.169.254, a cloud metadata"),
    ("https://[64:ff9b::a00:1]/", "an IPv6 form of 10.0.0.1, a private network address"),
    ("https://[64:ff9b::7f00:1]/", "an IPv6 form of 127.0.0.1, a loopback address"),
    ("https://[2002:7f00:1::1]/", "an IPv6 form of 127.0.0.1, a loopback address"),
    ("https://[2002:c0a8:101::1]/", "an IPv6 form of 192.168.1.1, a private network"),
    ("https://[::ffff:0:a00:1]/", "an IPv6 form of 10.0.0.1"),
    ("https://[::127.0.0.1]/", "an IPv6 form of 127.0.0.1"),
    ("https://[::5db8:d822]/", "reserved special-purpose"),  # IPv4-compatible, deprecated
    # names refused before any look-up
    ("https://localhost/", "local-only name (localhost)"),
    ("https://api.localhost:8443/", "local-only name (localhost)"),
    ("https://printer.local/", "local-only name (local)"),
    ("https://hooks.corp.internal/", "local-only name (internal)"),
    ("https://router.home.arpa/", "local-only name (home.arpa)"),
    ("https://metadata.google.internal/computeMetadata/v1/", "cloud metadata service"),
    ("https://metadata/", "cloud metadata service"),
    ("https://intranet/hook", "single-label name"),
]


@pytest.mark.parametrize(("url", "words"), REFUSED_URLS)
def test_refused_urls_say_why_without_resolving(url, words):
    answers = Answers({name: ["127.0.0.1"] for name in ("localhost", "intranet", "metadata")})
    message = refusal(url, answers)
    assert words in message
    assert answers.calls == []


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (["10.0.0.5"], "resolves to 10.0.0.5, a private network address"),
        ([PUBLIC_V4, "192.168.0.7"], "resolves to 192.168.0.7, a private network address"),
        ([PUBLIC_V6, "::1"], "resolves to ::1, a loopback address"),
        (["127.0.0.1"], "resolves to 127.0.0.1, a loopback address"),
        (["169.254.169.254"], "cloud metadata service address"),
        (["100.100.100.200"], "cloud metadata service address"),
        (["168.63.129.16"], "cloud metadata service address"),
        (["100.64.12.1"], "carrier-grade NAT"),
        (["fe80::1%eth0"], "resolves to fe80::1, a link-local address"),
        (["::ffff:169.254.169.254"], "an IPv6 form of 169.254.169.254"),
        (["64:ff9b::a9fe:a9fe"], "an IPv6 form of 169.254.169.254"),
        (["0.0.0.0"], "unspecified address"),  # noqa: S104 -- an answer, not a bind
    ],
)
def test_names_are_refused_when_any_address_is_not_public(answer, words):
    answers = Answers({"hooks.example.com": answer})
    message = refusal("https://hooks.example.com/hook", answers)
    assert message.startswith("hooks.example.com ")
    assert words in message
    assert answers.calls == ["hooks.example.com"]


def test_names_that_do_not_resolve_are_a_separate_refusal():
    with translation.override("en"), pytest.raises(DestinationUnresolved) as unknown:
        check_destination("https://nowhere.example.com/", resolve=Answers())
    assert "nowhere.example.com could not be resolved (Name or service not known)" in str(
        unknown.value
    )
    with translation.override("en"), pytest.raises(DestinationUnresolved) as empty:
        check_destination("https://hooks.example.com/", resolve=Answers({"hooks.example.com": []}))
    assert "resolves to no address" in str(empty.value)


def test_refusals_are_translated():
    with translation.override("ja"), pytest.raises(DestinationRefused) as refused:
        check_destination("https://169.254.169.254/", resolve=Answers())
    assert "169.254.169.254" in str(refused.value)
    assert "metadata" not in str(refused.value)  # Japanese, not the English source
    assert refused.value.field == "url"


def test_loopback_for_tests_lets_loopback_and_plain_http_to_it_through_only():
    answers = Answers({"hooks.example.com": ["127.0.0.1"], "localhost": ["127.0.0.1", "::1"]})
    allowed = [
        "https://127.0.0.1:8443/",
        "http://127.0.0.1:8080/hook",
        "http://[::1]:8080/",
        "http://hooks.example.com:8080/",
        "https://localhost/",
    ]
    for url in allowed:
        check_destination(url, resolve=answers, allow_loopback_for_tests=True)
    assert refusal(f"http://{PUBLIC_V4}/", allow_loopback_for_tests=True).endswith(
        "must start with https://."
    )
    assert "private network" in refusal("https://10.0.0.1/", allow_loopback_for_tests=True)
    assert "IPv6 form of 127.0.0.1" in refusal(
        "https://[::ffff:127.0.0.1]/", allow_loopback_for_tests=True
    )
    assert "local-only name (local)" in refusal(
        "https://printer.local/", allow_loopback_for_tests=True
    )


def test_documentation_addresses_pass_only_for_the_demo_and_nothing_else_does():
    answers = Answers({"hooks.example.com": ["198.51.100.7"]})
    for url in (
        "https://192.0.2.80/mamori",
        "https://[2001:db8::80]/",
        "https://hooks.example.com/",
    ):
        destination = check_destination(url, resolve=answers, allow_documentation=True)
        assert destination.scheme == "https"
    # Without the demo's choice, as at every delivery: refused, naming the address.
    assert "192.0.2.80" in refusal("https://192.0.2.80/mamori")
    # Only documentation ranges: the other special addresses stay refused.
    assert "private network" in refusal("https://10.0.0.1/", allow_documentation=True)
    assert "must start with https://." in refusal("http://192.0.2.80/", allow_documentation=True)


# --- Signatures -------------------------------------------------------------------------------


def test_signature_is_hmac_sha256_over_timestamp_dot_body():
    expected = hmac.new(SECRET, b"1767225600." + BODY, hashlib.sha256).hexdigest()
    assert signature(SECRET, TIMESTAMP, BODY) == expected
    assert signature(SECRET.decode(), TIMESTAMP, BODY) == expected
    assert signature_header(SECRET, TIMESTAMP, BODY) == f"t=1767225600,v1={expected}"


def test_verify_signature_accepts_the_real_thing_within_tolerance():
    header = signature_header(SECRET, TIMESTAMP, BODY)
    assert verify_signature(SECRET, header, BODY, now=TIMESTAMP)
    assert verify_signature(SECRET, header, BODY, now=TIMESTAMP + 300)
    assert verify_signature(SECRET, header, BODY, now=TIMESTAMP - 300)
    assert verify_signature(SECRET, header, BODY, now=TIMESTAMP + 30, tolerance=60)
    # During a secret's rotation one v1 per secret; any one matching is enough.
    rotated = f"t={TIMESTAMP},v1={'0' * 64},v1={signature(SECRET, TIMESTAMP, BODY)}"
    assert verify_signature(SECRET, rotated, BODY, now=TIMESTAMP)
    assert verify_signature(SECRET, header + ",v0=legacy", BODY, now=TIMESTAMP)


@pytest.mark.parametrize(
    ("header", "body", "now", "secret"),
    [
        (signature_header(SECRET, TIMESTAMP, BODY), BODY + b" ", TIMESTAMP, SECRET),
        (signature_header(SECRET, TIMESTAMP, BODY), BODY, TIMESTAMP, b"another-secret"),
        (signature_header(SECRET, TIMESTAMP, BODY), BODY, TIMESTAMP + 301, SECRET),
        (signature_header(SECRET, TIMESTAMP, BODY), BODY, TIMESTAMP - 301, SECRET),
        (signature_header(SECRET, TIMESTAMP + 1, BODY), BODY, TIMESTAMP, b"x"),
        (None, BODY, TIMESTAMP, SECRET),
        ("", BODY, TIMESTAMP, SECRET),
        ("garbage", BODY, TIMESTAMP, SECRET),
        (f"v1={signature(SECRET, TIMESTAMP, BODY)}", BODY, TIMESTAMP, SECRET),
        (f"t={TIMESTAMP}", BODY, TIMESTAMP, SECRET),
        (f"t=abc,v1={signature(SECRET, TIMESTAMP, BODY)}", BODY, TIMESTAMP, SECRET),
        (f"t=-5,v1={signature(SECRET, TIMESTAMP, BODY)}", BODY, TIMESTAMP, SECRET),
        (
            f"t={TIMESTAMP},t={TIMESTAMP},v1={signature(SECRET, TIMESTAMP, BODY)}",
            BODY,
            TIMESTAMP,
            SECRET,
        ),
        (f"t={TIMESTAMP},v1={signature(SECRET, TIMESTAMP, BODY).upper()}", BODY, TIMESTAMP, SECRET),
        (f"t={TIMESTAMP},v1=ö", BODY, TIMESTAMP, SECRET),
        (f"t={TIMESTAMP}," + "v1=0," * 1000, BODY, TIMESTAMP, SECRET),
    ],
)
def test_verify_signature_refuses_everything_else(header, body, now, secret):
    assert verify_signature(secret, header, body, now=now) is False


def test_signature_refuses_callers_mistakes():
    with pytest.raises(ValueError, match="secret is empty"):
        signature(b"", TIMESTAMP, BODY)
    with pytest.raises(ValueError, match="timestamp"):
        signature(SECRET, 1.5, BODY)


# --- Retry schedule ---------------------------------------------------------------------------


def test_retry_schedule_grows_by_four_up_to_six_hours():
    schedule = [nominal_attempt_delay(attempt) for attempt in range(1, 9)]
    assert schedule == [30, 120, 480, 1920, 7680, 21600, 21600, 21600]
    assert nominal_attempt_delay(10_000) == 21600
    for attempt in (0, -1, True, 1.0):
        with pytest.raises(ValueError, match="attempt"):
            nominal_attempt_delay(attempt)


def test_jitter_only_shortens_by_at_most_a_quarter():
    generator = random.Random(11)
    for attempt in range(1, 12):
        nominal = nominal_attempt_delay(attempt)
        delays = [next_attempt_delay(attempt, rng=generator.random) for _ in range(500)]
        assert all(0.75 * nominal < delay <= nominal for delay in delays)
        assert max(delays) - min(delays) > 0.2 * nominal  # the jitter is really there
    assert next_attempt_delay(3, rng=lambda: 0.0) == 480


def test_disable_needs_ten_failures_over_a_day():
    day = dt.timedelta(hours=24)
    assert not should_disable(9, dt.timedelta(days=30))
    assert not should_disable(50, day - dt.timedelta(seconds=1))
    assert should_disable(10, day)
    # One delivery to a dead receiver, retried on the schedule: turned off after the 10th
    # failure (26.8 h) without jitter, after the 11th (24.6 h) with the most of it.
    for shortening in (0.0, 0.999999):
        failing_for, failures = 0.0, 1
        while not should_disable(failures, dt.timedelta(seconds=failing_for)):
            failing_for += next_attempt_delay(failures, rng=lambda s=shortening: s)
            failures += 1
        assert (failures, round(failing_for / 3600, 1)) in {(10, 26.8), (11, 24.6)}


# --- Deliveries to real receivers -------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    return tls_certificate(tmp_path_factory.mktemp("receiver-tls"))


def named_destination(port: int, *, name: str = RECEIVER_NAME, path: str = "/", answers=None):
    """The receiver on 127.0.0.1 under a DNS name (resolved by the table: no such name exists)."""
    answers = answers or Answers({name: ["127.0.0.1"]})
    return check_destination(
        f"https://{name}:{port}{path}", resolve=answers, allow_loopback_for_tests=True
    )


def send(destination, certificate, *, timeout: float = 3.0, **options):
    return deliver(
        destination,
        BODY,
        secret=SECRET,
        timestamp=TIMESTAMP,
        timeout=timeout,
        ssl_context=certificate.client_context() if certificate else None,
        **options,
    )


def test_receiver_gets_a_correctly_signed_payload_for_the_name(certificate):
    with receiver(certificate=certificate) as hooks:
        destination = named_destination(hooks.port, path="/mamori/hook?org=7")
        outcome = send(
            destination,
            certificate,
            headers={
                "X-Mamori-Event": "alert.created",
                "Host": "evil.example",
                "x-mamori-signature": "forged",
            },
        )
    assert outcome.ok, outcome
    assert (outcome.status_code, outcome.error, outcome.response_excerpt) == (200, None, "ok")
    assert outcome.address == "127.0.0.1"
    [got] = hooks.requests
    assert got.path == "/mamori/hook?org=7"
    assert got.body == BODY
    assert got.headers["host"] == f"{RECEIVER_NAME}:{hooks.port}"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["user-agent"] == USER_AGENT
    assert got.headers["x-mamori-event"] == "alert.created"
    assert hooks.server_names == [RECEIVER_NAME]  # SNI: the name, not the address
    header = got.headers[SIGNATURE_HEADER.lower()]
    assert header == signature_header(SECRET, TIMESTAMP, BODY)
    assert verify_signature(SECRET, header, got.body, now=TIMESTAMP + 2)


def test_dns_rebinding_reaches_only_the_checked_address(certificate, monkeypatch):
    """The name resolves once, at the check; a second answer (internal) is never asked for,
    neither through ``resolve`` nor through the system resolver while delivering."""
    answers = Answers({RECEIVER_NAME: [["127.0.0.1"], ["10.0.0.1"]]})
    system_lookups = []
    real_getaddrinfo = socket.getaddrinfo

    def recording_getaddrinfo(host, *args, **kwargs):
        system_lookups.append(host)
        return real_getaddrinfo(host, *args, **kwargs)

    with receiver(certificate=certificate) as hooks:
        destination = named_destination(hooks.port, answers=answers)
        monkeypatch.setattr(socket, "getaddrinfo", recording_getaddrinfo)
        first = send(destination, certificate)
        second = send(destination, certificate)
    assert first.ok
    assert second.ok
    assert answers.calls == [RECEIVER_NAME]
    assert RECEIVER_NAME not in system_lookups
    assert len(hooks.requests) == 2


def test_receiver_answering_500_is_a_failure_with_its_excerpt(certificate):
    with receiver("error", certificate=certificate) as hooks:
        outcome = send(named_destination(hooks.port), certificate)
    assert not outcome.ok
    assert outcome.status_code == 500
    assert outcome.error is None
    assert outcome.response_excerpt == "boom: the receiver failed"
    assert len(hooks.requests) == 1


def test_redirect_is_not_followed(certificate):
    with (
        receiver(certificate=certificate) as elsewhere,
        receiver("redirect", certificate=certificate, location=f"{elsewhere.origin}/x") as hooks,
    ):
        outcome = send(named_destination(hooks.port), certificate)
    assert outcome.status_code == 302
    assert not outcome.ok
    assert outcome.detail == f"redirect not followed (Location: {elsewhere.origin}/x)"
    assert len(hooks.requests) == 1
    assert elsewhere.requests == []


@pytest.mark.parametrize("behaviour", ["hang", "drip"])
def test_receiver_that_never_finishes_is_cut_off_at_the_timeout(certificate, behaviour):
    with receiver(behaviour, certificate=certificate) as hooks:
        started = time.monotonic()
        outcome = send(named_destination(hooks.port), certificate, timeout=1.0)
        elapsed = time.monotonic() - started
    assert outcome.error is DeliveryError.TIMEOUT
    assert outcome.status_code is None
    assert 1.0 <= outcome.elapsed <= elapsed < 2.0
    assert len(hooks.requests) == 1  # it got the request; its answer never came
    with translation.override("en"):
        assert outcome.error.message == "The receiver did not answer in time."


def test_tls_handshake_that_never_completes_is_cut_off_at_the_timeout(certificate):
    with silent_listener() as port:
        started = time.monotonic()
        outcome = send(named_destination(port), certificate, timeout=1.0)
    assert outcome.error is DeliveryError.TIMEOUT
    assert time.monotonic() - started < 2.0


def test_huge_answer_is_read_only_as_far_as_the_excerpt(certificate):
    with receiver("huge", certificate=certificate) as hooks:
        outcome = send(named_destination(hooks.port), certificate)
    assert outcome.ok
    assert outcome.response_excerpt == "x" * EXCERPT_BYTES
    assert outcome.elapsed < 2.0


def test_certificate_for_another_name_is_refused(certificate):
    with receiver(certificate=certificate) as hooks:
        outcome = send(named_destination(hooks.port, name="other.example.com"), certificate)
    assert outcome.error is DeliveryError.TLS
    assert "certificate" in outcome.detail.lower()
    assert hooks.requests == []
    assert hooks.server_names == ["other.example.com"]


def test_untrusted_certificate_is_refused_with_the_default_context(certificate):
    with receiver(certificate=certificate) as hooks:
        outcome = send(named_destination(hooks.port), None)
    assert outcome.error is DeliveryError.TLS
    assert hooks.requests == []


def test_next_pinned_address_is_tried_when_one_refuses(certificate):
    with receiver(certificate=certificate) as hooks:
        answers = Answers({RECEIVER_NAME: ["::1", "127.0.0.1"]})  # nothing listens on ::1
        outcome = send(named_destination(hooks.port, answers=answers), certificate)
    assert outcome.ok
    assert outcome.address == "127.0.0.1"


def test_no_pinned_address_answering_is_a_connect_error(certificate):
    with closed_port() as port:
        outcome = send(named_destination(port), certificate)
    assert outcome.error is DeliveryError.CONNECT
    assert outcome.status_code is None
    assert outcome.detail


def test_ipv6_literal_receiver_verified_by_address(certificate):
    with receiver(certificate=certificate, host="::1") as hooks:
        destination = check_destination(
            f"https://[::1]:{hooks.port}/v6", resolve=Answers(), allow_loopback_for_tests=True
        )
        outcome = send(destination, certificate)
    assert outcome.ok
    assert hooks.requests[0].headers["host"] == f"[::1]:{hooks.port}"
    assert hooks.server_names == [None]  # no SNI for an address


def test_plain_http_to_loopback_for_tests():
    with receiver() as hooks:
        destination = check_destination(
            f"http://127.0.0.1:{hooks.port}/plain", resolve=Answers(), allow_loopback_for_tests=True
        )
        outcome = send(destination, None)
    assert outcome.ok
    assert hooks.requests[0].path == "/plain"


def test_answer_that_is_not_http_is_a_protocol_error():
    with not_http_server() as port:
        destination = check_destination(
            f"http://127.0.0.1:{port}/", resolve=Answers(), allow_loopback_for_tests=True
        )
        outcome = send(destination, None)
    assert outcome.error is DeliveryError.PROTOCOL
    assert outcome.status_code is None


def test_many_deliveries_at_once_from_an_event_loop(certificate):
    context = certificate.client_context()

    async def all_of_them(destination):
        return await asyncio.gather(
            *(
                deliver_async(
                    destination,
                    BODY,
                    secret=SECRET,
                    timestamp=TIMESTAMP,
                    timeout=5,
                    ssl_context=context,
                )
                for _ in range(40)
            )
        )

    with receiver(certificate=certificate) as hooks:
        outcomes = asyncio.run(all_of_them(named_destination(hooks.port)))
    assert all(outcome.ok for outcome in outcomes)
    assert len(hooks.requests) == 40
    assert all(
        verify_signature(SECRET, r.headers["x-mamori-signature"], r.body, now=TIMESTAMP)
        for r in hooks.requests
    )


def test_deliver_refuses_a_timeout_that_is_not_positive(certificate):
    destination = named_destination(443)
    with pytest.raises(ValueError, match="timeout must be positive"):
        send(destination, certificate, timeout=0)
