"""The asset registry: claims, their verification, overlaps between organisations, CSV in and out.

A claim is parsed and judged by the pure ``assets`` module (what may never be claimed, the
canonical form); here it is stored, checked against other organisations' claims and verified:
a domain by the TXT record ``_mamori.<domain>`` carrying the token shown to its organisation,
an address block or AS number by the scheme owner's approval with a reason (and, for a range a
third party hosts, the hoster's permission as an attachment). Every change is in the audit trail.
"""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from mamori.audit import services as audit
from mamori.core.errors import Conflict, MamoriError, NotAllowed, WrongState
from mamori.core.text import spreadsheet_safe
from mamori.earlywarning import assets as claims
from mamori.earlywarning import ownership, permissions
from mamori.earlywarning.models import (
    ADDRESS_KINDS,
    Asset,
    AssetKind,
    AssetOverlap,
    AssetState,
    VerificationMethod,
    address_hex,
)
from mamori.organisations.access import Access

CSV_COLUMNS = ("kind", "value", "include_subdomains")
CSV_MAX_ROWS = 100_000
CSV_MAX_BYTES = 10 * 1024 * 1024
TRUE_WORDS = frozenset({"1", "true", "yes", "y", "x"})
FALSE_WORDS = frozenset({"", "0", "false", "no", "n"})
# Claims that still count for overlaps: a refused or withdrawn claim holds nothing.
LIVE_STATES = (AssetState.PENDING, AssetState.VERIFIED)


def documentation_allowed(override: bool | None) -> bool:
    """Whether documentation ranges and example domains may be claimed: the caller's explicit
    choice (the demo, which holds nothing real), else the instance's setting (off in
    production, where such a claim is always a mistake)."""
    return settings.EARLYWARNING_DOCUMENTATION_ASSETS if override is None else override


def parse(
    kind: str,
    value: str,
    include_subdomains: bool = False,
    *,
    allow_documentation: bool | None = None,
) -> claims.NetworkAsset:
    """The claim in canonical form, or ``MamoriError`` with the reason (field ``value``)."""
    try:
        return claims.parse_asset(
            kind,
            value,
            include_subdomains,
            allow_documentation=documentation_allowed(allow_documentation),
        )
    except claims.AssetRefused as refused:
        raise MamoriError(str(refused), field="value", code=refused.code) from None


def _fields(claim: claims.NetworkAsset) -> dict:
    fields = {
        "kind": claim.kind,
        "value": claim.value,
        "include_subdomains": claim.include_subdomains,
        "ip_version": claim.version,
        "first_hex": "",
        "last_hex": "",
        "asn": claim.asn,
    }
    if claim.kind in ADDRESS_KINDS:
        fields["first_hex"] = address_hex(claim.first)
        fields["last_hex"] = address_hex(claim.last)
    return fields


def _parents(domain: str) -> list[str]:
    labels = domain.split(".")
    return [".".join(labels[index:]) for index in range(1, len(labels) - 1)]


def overlapping_claims(claim: claims.NetworkAsset, organisation_id: int):
    """Other organisations' live claims that cover something this one covers."""
    others = Asset.objects.filter(state__in=LIVE_STATES).exclude(organisation_id=organisation_id)
    if claim.kind in ADDRESS_KINDS:
        return others.overlapping(claim.version, claim.first, claim.last)
    if claim.kind == AssetKind.ASN:
        return others.filter(kind=AssetKind.ASN, asn=claim.asn)
    same_or_above = Q(value=claim.domain) | Q(
        value__in=_parents(claim.domain), include_subdomains=True
    )
    if claim.include_subdomains:
        same_or_above |= Q(value__endswith="." + claim.domain)
    return others.filter(same_or_above, kind=AssetKind.DOMAIN)


def new_verification_token() -> str:
    """A domain's token: random, so it proves nothing for any other claim, and stored with
    the claim so that it does not change when the instance's keys are rotated."""
    return ownership.TOKEN_PREFIX + secrets.token_urlsafe(24)


@transaction.atomic
def register(
    actor,
    access: Access | None,
    organisation,
    *,
    kind: str,
    value: str,
    include_subdomains: bool = False,
    label: str = "",
    allow_documentation: bool | None = None,
) -> Asset:
    """Store a claim, pending verification. ``access`` None is the operator's command line;
    ``allow_documentation`` overrides the setting (``documentation_allowed``)."""
    if access is not None and not permissions.can_register(access, organisation.pk):
        raise NotAllowed(
            _("Only the organisation's administrators and contributors register its assets.")
        )
    claim = parse(kind, value, include_subdomains, allow_documentation=allow_documentation)
    return _store(actor, organisation, claim, label)


def _store(actor, organisation, claim: claims.NetworkAsset, label: str) -> Asset:
    existing = Asset.objects.filter(organisation=organisation, kind=claim.kind, value=claim.value)
    if existing.filter(state__in=LIVE_STATES).exists():
        raise Conflict(
            _("%(value)s is already registered for this organisation.") % {"value": claim.value},
            field="value",
        )
    existing.delete()  # a refused or withdrawn claim of the same value is replaced
    asset = Asset.objects.create(
        organisation=organisation,
        label=label.strip()[:200],
        created_by=actor if getattr(actor, "is_authenticated", False) else None,
        verification_token=new_verification_token() if claim.kind == AssetKind.DOMAIN else "",
        **_fields(claim),
    )
    others = list(overlapping_claims(claim, organisation.pk).select_related("organisation"))
    AssetOverlap.objects.bulk_create(
        [AssetOverlap(asset=asset, other=other) for other in others], ignore_conflicts=True
    )
    audit.record(
        actor,
        "earlywarning.asset.register",
        asset,
        organisation=organisation,
        details={"kind": asset.kind, "value": str(asset), "overlaps": [o.pk for o in others]},
    )
    return asset


def _locked(asset: Asset) -> Asset:
    return Asset.objects.select_for_update().get(pk=asset.pk)


@transaction.atomic
def approve(actor, access: Access | None, asset: Asset, *, reason: str, permission=None) -> Asset:
    """The scheme owner (or the operator's command line, ``access`` None) approves an address
    block or AS number, saying why; ``permission`` is the hoster's written permission for a
    range a third party hosts."""
    if access is not None and not permissions.can_decide(access):
        raise NotAllowed(_("Only the scheme owner approves address blocks and AS numbers."))
    asset = _locked(asset)
    if asset.kind == AssetKind.DOMAIN:
        raise WrongState(_("A domain is verified by its DNS TXT record, not by approval."))
    if asset.state != AssetState.PENDING:
        raise WrongState(_("Only a claim awaiting verification can be approved."))
    reason = (reason or "").strip()
    if not reason:
        raise MamoriError(_("Say why the claim is approved."), field="reason")
    asset.state = AssetState.VERIFIED
    asset.method = VerificationMethod.APPROVAL
    asset.verified_at = timezone.now()
    asset.decided_by = actor if getattr(actor, "is_authenticated", False) else None
    asset.reason = reason
    if permission is not None:
        asset.hoster_permission.save(permission.name, permission, save=False)
    asset.save()
    audit.record(
        actor,
        "earlywarning.asset.approve",
        asset,
        organisation=asset.organisation,
        details={"value": str(asset), "reason": reason, "permission": bool(permission)},
    )
    return asset


@transaction.atomic
def refuse(actor, access: Access, asset: Asset, *, reason: str) -> Asset:
    if not permissions.can_decide(access):
        raise NotAllowed(_("Only the scheme owner refuses claims."))
    asset = _locked(asset)
    if asset.state not in LIVE_STATES:
        raise WrongState(_("This claim is no longer live."))
    reason = (reason or "").strip()
    if not reason:
        raise MamoriError(_("Say why the claim is refused."), field="reason")
    asset.state = AssetState.REFUSED
    asset.decided_by = actor
    asset.reason = reason
    asset.save(update_fields=["state", "decided_by", "reason", "updated_at"])
    audit.record(
        actor, "earlywarning.asset.refuse", asset, organisation=asset.organisation,
        details={"value": str(asset), "reason": reason},
    )  # fmt: skip
    return asset


@transaction.atomic
def withdraw(actor, access: Access, asset: Asset) -> Asset:
    if not permissions.can_withdraw(access, asset):
        raise NotAllowed(
            _("Only the organisation's administrators and contributors withdraw its assets.")
        )
    asset = _locked(asset)
    if asset.state not in LIVE_STATES:
        raise WrongState(_("This claim is no longer live."))
    asset.state = AssetState.WITHDRAWN
    asset.save(update_fields=["state", "updated_at"])
    audit.record(
        actor, "earlywarning.asset.withdraw", asset, organisation=asset.organisation,
        details={"value": str(asset)},
    )  # fmt: skip
    return asset


def resolver_address() -> str:
    """The configured resolver, else the machine's own (the first nameserver it lists)."""
    if settings.DNS_RESOLVER:
        return settings.DNS_RESOLVER
    import dns.resolver

    return dns.resolver.Resolver(configure=True).nameservers[0]


def check_domain(actor, access: Access | None, asset: Asset) -> ownership.OwnershipResult:
    """Look up the domain's TXT record now; the claim is verified when it carries the token.
    A verified domain whose record has gone stays verified until withdrawn (records are
    sometimes removed after verification); the result of every check is kept on the claim."""
    if access is not None and not permissions.can_check_domain(access, asset):
        raise NotAllowed(
            _("Only the organisation's administrators and contributors check its domains.")
        )
    if asset.kind != AssetKind.DOMAIN:
        raise WrongState(_("Only a domain is verified by DNS."))
    if asset.state not in LIVE_STATES:
        raise WrongState(_("This claim is no longer live."))
    # The look-up happens outside any transaction: it may take seconds.
    result = ownership.check_txt(
        asset.value,
        asset.verification_token,
        nameserver=resolver_address(),
        port=settings.DNS_PORT,
        timeout=settings.DNS_TIMEOUT_SECONDS,
    )
    with transaction.atomic():
        asset = _locked(asset)
        asset.last_checked_at = timezone.now()
        asset.last_check_result = str(result.reason)
        fields = ["last_checked_at", "last_check_result", "updated_at"]
        if result.found and asset.state == AssetState.PENDING:
            asset.state = AssetState.VERIFIED
            asset.method = VerificationMethod.DNS_TXT
            asset.verified_at = asset.last_checked_at
            fields += ["state", "method", "verified_at"]
            audit.record(
                actor, "earlywarning.asset.verify", asset, organisation=asset.organisation,
                details={"value": str(asset), "record": result.record_name},
            )  # fmt: skip
        asset.save(update_fields=fields)
    return result


@transaction.atomic
def settle_overlap(
    actor, access: Access, overlap: AssetOverlap, *, settlement: str
) -> AssetOverlap:
    """The scheme owner records how two overlapping claims were settled (typically after
    refusing one of them); observations there go to the organisations again."""
    if not permissions.can_decide(access):
        raise NotAllowed(_("Only the scheme owner settles overlapping claims."))
    overlap = AssetOverlap.objects.select_for_update().get(pk=overlap.pk)
    if overlap.settled_at is not None:
        raise WrongState(_("This overlap has already been settled."))
    settlement = (settlement or "").strip()
    if not settlement:
        raise MamoriError(_("Say how the overlap was settled."), field="settlement")
    overlap.settled_at = timezone.now()
    overlap.settled_by = actor
    overlap.settlement = settlement
    overlap.save(update_fields=["settled_at", "settled_by", "settlement"])
    audit.record(
        actor, "earlywarning.overlap.settle", overlap,
        details={"assets": [overlap.asset_id, overlap.other_id], "settlement": settlement},
    )  # fmt: skip
    return overlap


# --- CSV ----------------------------------------------------------------------------------------


@dataclass
class CsvImport:
    """What an import did: the claims stored, or (nothing stored) every error by line."""

    created: list[Asset] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _flag(text: str) -> bool | None:
    word = (text or "").strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None


def read_csv(
    data: bytes, *, source: str
) -> tuple[list[tuple[int, claims.NetworkAsset]], list[str]]:
    """The claims of a registry CSV (columns ``kind,value,include_subdomains``; a header row is
    required, other columns are ignored), with every bad row as ``source:line: reason``."""
    if len(data) > CSV_MAX_BYTES:
        return [], [
            _("%(source)s: the file is larger than %(size)s MB.")
            % {"source": source, "size": CSV_MAX_BYTES // 2**20}
        ]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        return [], [
            _("%(source)s: the file is not UTF-8 text (byte %(at)s).")
            % {"source": source, "at": error.start}
        ]
    if "\x00" in text:
        return [], [
            _("%(source)s: the file contains NUL bytes; it is not a CSV file.") % {"source": source}
        ]
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        return [], [_("%(source)s: the file is empty.") % {"source": source}]
    except csv.Error as error:
        return [], [f"{source}:1: {error}"]
    missing = [name for name in ("kind", "value") if name not in header]
    if missing:
        return [], [
            _("%(source)s:1: the header must name the columns %(columns)s; missing: %(missing)s.")
            % {"source": source, "columns": ",".join(CSV_COLUMNS), "missing": ", ".join(missing)}
        ]
    at = {name: header.index(name) for name in CSV_COLUMNS if name in header}
    rows: list[tuple[int, claims.NetworkAsset]] = []
    errors: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    try:
        for cells in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if len(rows) + len(errors) >= CSV_MAX_ROWS:
                errors.append(
                    _("%(source)s:%(line)s: more than %(rows)s rows; split the file.")
                    % {"source": source, "line": line, "rows": CSV_MAX_ROWS}
                )
                break

            def cell(name: str, cells=cells) -> str:
                index = at.get(name)
                return cells[index] if index is not None and index < len(cells) else ""

            subdomains = _flag(cell("include_subdomains"))
            if subdomains is None:
                errors.append(
                    _(
                        "%(source)s:%(line)s: include_subdomains must be true or false, not '%(value)s'."
                    )
                    % {"source": source, "line": line, "value": cell("include_subdomains")[:40]}
                )
                continue
            try:
                claim = claims.parse_asset(
                    cell("kind"), cell("value"), subdomains,
                    allow_documentation=settings.EARLYWARNING_DOCUMENTATION_ASSETS,
                )  # fmt: skip
            except claims.AssetRefused as refused:
                errors.append(f"{source}:{line}: {refused}")
                continue
            key = (claim.kind, claim.value)
            if key in seen:
                errors.append(
                    _("%(source)s:%(line)s: %(value)s is already on line %(first)s.")
                    % {"source": source, "line": line, "value": claim.value, "first": seen[key]}
                )
                continue
            seen[key] = line
            rows.append((line, claim))
    except csv.Error as error:
        errors.append(f"{source}:{reader.line_num}: {error}")
    return rows, errors


def import_csv(
    actor,
    access: Access | None,
    organisation,
    data: bytes,
    *,
    source: str,
    approve_reason: str = "",
) -> CsvImport:
    """Register every claim of a CSV file, or none: a file with any bad row (or a row already
    registered) stores nothing and lists every problem by line. With ``approve_reason`` the
    address blocks and AS numbers are approved at once (the operator's command line, or a
    scheme owner); domains still wait for their DNS record."""
    if access is not None and not permissions.can_register(access, organisation.pk):
        raise NotAllowed(
            _("Only the organisation's administrators and contributors register its assets.")
        )
    if approve_reason and access is not None and not permissions.can_decide(access):
        raise NotAllowed(_("Only the scheme owner approves address blocks and AS numbers."))
    rows, errors = read_csv(data, source=source)
    result = CsvImport(errors=errors)
    if not rows and not errors:
        result.errors.append(_("%(source)s: the file has no claims.") % {"source": source})
    if result.errors:
        return result
    registered = set(
        Asset.objects.filter(organisation=organisation, state__in=LIVE_STATES).values_list(
            "kind", "value"
        )
    )
    for line, claim in rows:
        if (claim.kind, claim.value) in registered:
            result.errors.append(
                _("%(source)s:%(line)s: %(value)s is already registered for this organisation.")
                % {"source": source, "line": line, "value": claim.value}
            )
    if result.errors:
        return result
    with transaction.atomic():
        for _line, claim in rows:
            asset = _store(actor, organisation, claim, "")
            if approve_reason and claim.kind != AssetKind.DOMAIN:
                asset = approve(actor, None, asset, reason=approve_reason)
            result.created.append(asset)
    return result


def export_csv(assets: Iterable[Asset]) -> str:
    """The registry as CSV, in the import's columns and then the claim's state."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*CSV_COLUMNS, "state", "verified_at", "label"])
    for asset in assets:
        writer.writerow(
            [
                asset.kind,
                asset.value,
                "true" if asset.include_subdomains else "false",
                asset.state,
                asset.verified_at.isoformat() if asset.verified_at else "",
                spreadsheet_safe(asset.label),
            ]
        )
    return out.getvalue()
