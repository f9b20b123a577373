"""Domain ownership: the DNS TXT record that proves an organisation controls a domain.

The network layer only: it computes the token an organisation publishes and looks the record up
with dnspython. It reads no setting and touches no model — the caller passes the secret, the
resolver's address and the timeout (the registry's services and tasks are the callers).

Where the record goes: ``_mamori.<domain>`` (:func:`txt_record_name`), not the domain itself.
An underscore label (RFC 8552) is a name of its own, so

- it never mixes with the TXT records already at the apex (SPF, other services' verifications),
  and the check reads only the records meant for it;
- it can be published when the domain itself is a CNAME (``www.example.jp`` pointing at a CDN),
  where no other record may sit beside the CNAME — the apex could not hold it;
- a DNS team can delegate or CNAME ``_mamori`` alone.

Only that name is read (not the apex as well): one place keeps the instructions and the reasons
(:class:`OwnershipReason`) unambiguous.

The record's text is the whole token, ``mamori-verification=<43 url-safe characters>``; it may
be split into several character-strings (DNS limits each to 255 bytes, and some panels split
long values), which are joined before comparing, as SPF does (RFC 7208 §3.3). Surrounding
whitespace and one pair of quotes pasted along with it are ignored; the prefix is compared
without regard to case, the token itself exactly (it is base64, where case matters).
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import ipaddress
import re
from dataclasses import dataclass

import dns.exception
import dns.message
import dns.name
import dns.rdatatype
import dns.resolver
import idna
from django.utils.translation import gettext as _

from mamori.core.errors import MamoriError

TOKEN_PREFIX = "mamori-verification="  # noqa: S105 -- a label, not a secret
RECORD_LABEL = "_mamori"
# 24 bytes of HMAC-SHA256 (192 bits): 32 url-safe characters, no padding to trip over.
TOKEN_BYTES = 24
# How many of the TXT values seen are kept on the result for the page to show.
MAX_RECORDS_SHOWN = 10
MAX_RECORD_CHARS_SHOWN = 300

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


class InvalidDomain(MamoriError):
    code = "invalid_domain"


def normalise_domain(domain: str) -> str:
    """The domain in the one form tokens and lookups use: lower-case A-labels (IDNA 2008 with
    UTS 46 mapping, so ``例え.JP`` and ``xn--r8jz45g.jp`` are the same domain), without the
    trailing dot. Raises :class:`InvalidDomain` naming the problem."""
    if not isinstance(domain, str) or not domain.strip():
        raise InvalidDomain(_("Enter a domain name."))
    text = domain.strip()
    shown = text if len(text) <= 100 else text[:99] + "…"
    if text.endswith("."):
        text = text[:-1]
    if "://" in text or "/" in text:
        raise InvalidDomain(
            _("%(domain)s is not a domain name: enter the name alone, without https:// or a path.")
            % {"domain": shown}
        )
    if text.startswith("*."):
        raise InvalidDomain(
            _(
                "%(domain)s: enter the domain without a wildcard and choose whether its "
                "subdomains are included."
            )
            % {"domain": shown}
        )
    if _is_ip_address(text):
        raise InvalidDomain(
            _("%(domain)s is an IP address, not a domain name: register it as an address.")
            % {"domain": shown}
        )
    try:
        ascii_name = idna.encode(text, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        raise InvalidDomain(
            _("%(domain)s is not a valid domain name.") % {"domain": shown}
        ) from None
    labels = ascii_name.split(".")
    if (
        len(ascii_name) > 253
        or not all(_LABEL.match(label) for label in labels)
        or labels[-1].isdigit()  # no top-level domain is a number
    ):
        raise InvalidDomain(_("%(domain)s is not a valid domain name.") % {"domain": shown})
    if len(labels) < 2:
        raise InvalidDomain(
            _("%(domain)s is a single label; enter a full domain name such as example.jp.")
            % {"domain": shown}
        )
    return ascii_name


def _is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def ownership_token(secret: bytes | str, organisation_id: int, domain: str) -> str:
    """The TXT value that proves ``organisation_id`` controls ``domain``.

    An HMAC-SHA256 of the organisation and the normalised domain under ``secret``: stable (the
    organisation publishes it once and it stays valid), different for every organisation and
    domain (one organisation's record proves nothing for another), and not guessable without
    the secret. Changing the secret changes every token, so callers pass a secret kept for this
    purpose alone, not one that is rotated.
    """
    if isinstance(secret, str):
        secret = secret.encode("utf-8")
    if not secret:
        raise ValueError("the ownership secret is empty")
    if isinstance(organisation_id, bool) or not isinstance(organisation_id, int):
        raise TypeError(f"organisation_id must be an int, not {type(organisation_id).__name__}")
    if organisation_id < 1:
        raise ValueError(f"organisation_id must be positive, not {organisation_id}")
    message = f"mamori domain ownership v1\x00{organisation_id}\x00{normalise_domain(domain)}"
    digest = hmac.new(secret, message.encode("ascii"), hashlib.sha256).digest()
    return TOKEN_PREFIX + base64.urlsafe_b64encode(digest[:TOKEN_BYTES]).decode("ascii")


def txt_record_name(domain: str) -> str:
    """Where the TXT record goes: ``_mamori.<domain>`` (A-labels, no trailing dot); see the
    module's docstring for why not the domain itself."""
    return f"{RECORD_LABEL}.{normalise_domain(domain)}"


class OwnershipReason(enum.StrEnum):
    """Why a check found the token or not; the value is what callers store."""

    FOUND = "found"
    NXDOMAIN = "nxdomain"  # the record's name does not exist
    NO_TXT = "no_txt"  # the name exists but holds no TXT record
    WRONG_TOKEN = "wrong_token"  # noqa: S105 -- TXT records there, none with the token
    TIMEOUT = "timeout"  # the resolver did not answer in time
    SERVFAIL = "servfail"  # the resolver answered SERVFAIL (or REFUSED)
    ERROR = "error"  # anything else: unreachable resolver, malformed answer


@dataclass(frozen=True)
class OwnershipResult:
    """The outcome of one look-up. ``records`` are the TXT values seen (multi-string records
    joined), at most :data:`MAX_RECORDS_SHOWN`; ``detail`` is the resolver library's own text
    for failures, for the logs."""

    domain: str
    record_name: str
    found: bool
    reason: OwnershipReason
    records: tuple[str, ...] = ()
    nameserver: str = ""
    timeout: float = 0.0
    detail: str = ""

    @property
    def message(self) -> str:
        """The reason in words, in the language active when it is read."""
        values = {
            "domain": self.domain,
            "name": self.record_name,
            "server": self.nameserver,
            "seconds": f"{self.timeout:g}",
            "count": len(self.records),
            "detail": self.detail,
        }
        match self.reason:
            case OwnershipReason.FOUND:
                text = _(
                    "The TXT record at %(name)s carries this organisation's token: "
                    "%(domain)s is verified."
                )
            case OwnershipReason.NXDOMAIN:
                text = _(
                    "%(name)s does not exist in DNS (NXDOMAIN): publish a TXT record with the "
                    "token at that name."
                )
            case OwnershipReason.NO_TXT:
                text = _(
                    "%(name)s exists but has no TXT record: publish a TXT record with the token "
                    "at that name."
                )
            case OwnershipReason.WRONG_TOKEN if any(_has_prefix(r) for r in self.records):
                text = _(
                    "%(name)s has a Mamori verification record, but with another token: it was "
                    "issued for another organisation or another domain. Publish this "
                    "organisation's token for %(domain)s."
                )
            case OwnershipReason.WRONG_TOKEN:
                text = _(
                    "%(name)s has %(count)s TXT record(s), but none is a Mamori verification "
                    "record: check that the whole token was copied."
                )
            case OwnershipReason.TIMEOUT:
                text = _(
                    "The DNS server %(server)s did not answer within %(seconds)s seconds; try "
                    "again later."
                )
            case OwnershipReason.SERVFAIL:
                text = _(
                    "The DNS server %(server)s could not look up %(name)s (SERVFAIL): the "
                    "domain's DNS may be misconfigured (for example broken DNSSEC); try again "
                    "later."
                )
            case _:
                text = _("The DNS look-up of %(name)s failed: %(detail)s")
        return text % values


def _has_prefix(value: str) -> bool:
    return _unwrap(value)[: len(TOKEN_PREFIX)].lower() == TOKEN_PREFIX


def _unwrap(value: str) -> str:
    """The value as published, without the whitespace and one pair of quotes that pasting into
    a DNS panel tends to add."""
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1].strip()
    return value


def _matches(value: str, expected_token: str) -> bool:
    value = _unwrap(value)
    if not _has_prefix(value):
        return False
    published = value[len(TOKEN_PREFIX) :]
    wanted = expected_token[len(TOKEN_PREFIX) :]
    return hmac.compare_digest(published.encode("utf-8"), wanted.encode("utf-8"))


def check_txt(
    domain: str,
    expected_token: str,
    *,
    nameserver: str,
    port: int = 53,
    timeout: float,
) -> OwnershipResult:
    """Look up ``_mamori.<domain>`` TXT at ``nameserver`` (an IP address of a recursive
    resolver, or of the domain's authoritative server) and say whether ``expected_token`` (the
    full value from :func:`ownership_token`) is published there.

    Never raises for what DNS answers: every outcome is an :class:`OwnershipResult` with its
    reason. ``timeout`` bounds the whole look-up, UDP tries and the TCP retry of a truncated
    answer included. Raises :class:`InvalidDomain` for a domain that is not one, and
    ``ValueError`` for a caller's mistake (a nameserver that is not an address, a token
    without the prefix).
    """
    ascii_domain = normalise_domain(domain)
    record_name = f"{RECORD_LABEL}.{ascii_domain}"
    try:
        ipaddress.ip_address(nameserver)
    except ValueError:
        raise ValueError(f"nameserver must be an IP address, not {nameserver!r}") from None
    if not expected_token.startswith(TOKEN_PREFIX):
        raise ValueError(f"expected_token must start with {TOKEN_PREFIX!r}")
    if timeout <= 0:
        raise ValueError(f"timeout must be positive, not {timeout}")

    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [nameserver]
    resolver.port = port
    resolver.timeout = timeout
    resolver.lifetime = timeout
    resolver.cache = None

    def result(reason: OwnershipReason, records=(), detail="") -> OwnershipResult:
        return OwnershipResult(
            domain=ascii_domain,
            record_name=record_name,
            found=reason is OwnershipReason.FOUND,
            reason=reason,
            records=tuple(records),
            nameserver=nameserver,
            timeout=timeout,
            detail=detail,
        )

    try:
        answer = resolver.resolve(
            dns.name.from_text(record_name + "."),
            dns.rdatatype.TXT,
            search=False,
            raise_on_no_answer=False,
        )
    except dns.resolver.NXDOMAIN as exc:
        return result(OwnershipReason.NXDOMAIN, detail=str(exc))
    except dns.resolver.LifetimeTimeout as exc:
        return result(OwnershipReason.TIMEOUT, detail=str(exc))
    except dns.resolver.NoNameservers as exc:
        # dnspython's word for "every server answered with an error": SERVFAIL or REFUSED.
        return result(OwnershipReason.SERVFAIL, detail=str(exc))
    except (dns.exception.DNSException, OSError) as exc:
        return result(OwnershipReason.ERROR, detail=str(exc) or type(exc).__name__)

    rrset = answer.rrset if answer.rrset is not None else ()
    # A record of several character-strings is one value, joined (RFC 7208 §3.3).
    values = [b"".join(rdata.strings).decode("utf-8", errors="replace") for rdata in rrset]
    if not values:
        return result(OwnershipReason.NO_TXT)
    found = any(_matches(value, expected_token) for value in values)
    # Records with the prefix first, so that the few kept are the telling ones.
    values.sort(key=lambda value: not _has_prefix(value))
    shown = [value[:MAX_RECORD_CHARS_SHOWN] for value in values[:MAX_RECORDS_SHOWN]]
    return result(OwnershipReason.FOUND if found else OwnershipReason.WRONG_TOKEN, shown)
