"""Early-warning demo: the fictitious organisations' registered assets, network reports read
into alerts, the alerts' lifecycle, a webhook with its delivery log and a supplier notice,
built through the services the product uses.

- Assets (``registry``): Kohaku Bank's address blocks verified by the scheme owner's approval and
  its domain pending, waiting for the TXT record its page shows; Menou Systems' block verified;
  Ruri Shinkin Bank's block verified and its claim on Menou's range refused (the overlap settled).
  Every claim is a documentation range or an ``.example`` name (RFC 5737, 3849, 2606): nothing
  the demo says can be about a real organisation's network. The demo passes
  ``allow_documentation`` for it; an instance's own registry keeps refusing such claims unless
  ``MAMORI_EARLYWARNING_DOCUMENTATION_ASSETS`` is set.
- Reports (``feeding.import_location``): the bundled files of ``data/earlywarning/`` (invented
  rows in Shadowserver's layouts, see their README).
- Alerts (``alerts.change_state``): Kohaku Bank's in every state — new, acknowledged, mitigated,
  closed, risk accepted until a date, false positive.
- A webhook of Kohaku Bank (``endpoints.create_endpoint``) on a documentation address: every event
  is recorded in its delivery log, and the one attempt the demo makes (``delivery.deliver_due``)
  is refused before any connection — a documentation address is never reachable — and logged as
  failed with that reason. The demo opens no network connection.
- Menou Systems' exposed remote desktop reaches Kohaku Bank, whose core banking depends on Menou
  in its supply-chain survey (``demo.supplychain``), as a ``supplier_exposure`` notice
  (``fanout.notices_for``, called by the import).

Idempotent: once Kohaku Bank's first block is registered, nothing is created again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from mamori.accounts.models import User
from mamori.demo import cast
from mamori.earlywarning import alerts, delivery, endpoints, feeding, registry
from mamori.earlywarning.models import (
    Alert,
    AlertState,
    Asset,
    AssetOverlap,
    WebhookDelivery,
    WebhookEndpoint,
)
from mamori.organisations.access import Access
from mamori.organisations.models import Organisation
from mamori.supplychain.models import Entity

REPORTS_DIR = Path(__file__).resolve().parent / "data" / "earlywarning"
# Read in this order (a report type per file, named after the feed).
REPORTS = ("scan_rdp", "scan_http_vulnerable", "event4_sinkhole")

KOHAKU_BLOCK = "192.0.2.0/25"
KOHAKU_BLOCK_V6 = "2001:db8:10::/48"
KOHAKU_DOMAIN = "kohaku-bank.example"
MENOU_BLOCK = "198.51.100.0/25"
RURI_BLOCK = "203.0.113.0/26"
RURI_REFUSED = "198.51.100.0/24"
# A documentation address: registered, never reachable (see the module's docstring).
WEBHOOK_URL = "https://192.0.2.80/mamori/alerts"
RISK_ACCEPTED_DAYS = 90

APPROVED = "デモ: RIR の登録情報で確認しました。 (Demo: checked against the RIR's records.)"
REFUSED = (
    "デモ: RIR の登録情報ではこのブロックの一部は別の組織が保有しています。 "
    "(Demo: the RIR's records show part of this block held by another organisation.)"
)
SETTLED = (
    "デモ: るり信用金庫の申請を拒否し、めのうシステムズの申請を残しました。 "
    "(Demo: Ruri's claim refused; Menou's stands.)"
)

# Kohaku Bank's alerts by the address they are about, and what its staff did with each.
LIFECYCLE = (
    ("192.0.2.10", AlertState.ACKNOWLEDGED, "", None),
    ("192.0.2.11", AlertState.MITIGATED, "", None),
    ("192.0.2.20", AlertState.CLOSED, "", None),
    (
        "2001:db8:10::20",
        AlertState.RISK_ACCEPTED,
        "デモ: 機器の更改を来四半期に予定。接続元を限定済み。 "
        "(Demo: the appliance is replaced next quarter; sources are restricted meanwhile.)",
        RISK_ACCEPTED_DAYS,
    ),
    (
        "192.0.2.21",
        AlertState.FALSE_POSITIVE,
        "デモ: 公開用のミラーで、認証情報は含まれません。 "
        "(Demo: a public mirror without credentials.)",
        None,
    ),
)
# Left new: the PC calling a malware sinkhole.
STILL_NEW = "192.0.2.50"


@dataclass
class Result:
    created: bool
    assets: dict[str, int]
    alerts: dict[str, int]
    supplier_notices: int
    deliveries: dict[str, int]

    def summary(self) -> str:
        return _(
            "Early-warning demo: %(assets)d registered assets (%(verified)d verified, "
            "%(pending)d pending, %(refused)d refused), %(alerts)d alerts "
            "(%(notices)d supplier notices), %(deliveries)d webhook deliveries logged."
        ) % {
            "assets": sum(self.assets.values()),
            "verified": self.assets.get("verified", 0),
            "pending": self.assets.get("pending", 0),
            "refused": self.assets.get("refused", 0),
            "alerts": sum(self.alerts.values()),
            "notices": self.supplier_notices,
            "deliveries": sum(self.deliveries.values()),
        }


def _organisations() -> dict[str, Organisation] | None:
    entries = (cast.KOHAKU_BANK, cast.MENOU_SYSTEMS, cast.RURI_SHINKIN)
    found = {
        entry.key: Organisation.objects.filter(name_en=entry.name_en).first() for entry in entries
    }
    return None if None in found.values() else found


def already_loaded(kohaku: Organisation) -> bool:
    return Asset.objects.filter(organisation=kohaku, value=KOHAKU_BLOCK).exists()


def build(*, now: dt.datetime | None = None) -> Result:
    """Build the early-warning demo unless it is there (the main demo must be loaded: the
    organisations and their users; the supply-chain demo for the supplier notice)."""
    organisations = _organisations()
    if organisations is None:
        return _result(False, [])
    created = False
    if not already_loaded(organisations["kohaku"]):
        # All or nothing: a failure half-way would leave the marker claim and never finish.
        with transaction.atomic():
            _build(organisations, now or timezone.now())
        created = True
    return _result(created, list(organisations.values()))


def _user(username: str) -> tuple[User, Access]:
    user = User.objects.get(username=username)
    return user, Access.for_user(user)


def _link_supplier(kohaku: Organisation, menou: Organisation) -> None:
    """Kohaku Bank's graph names Menou Systems as the entity its survey bound to Menou's
    organisation; the notice reaches the bank through that link, so say so if it is missing."""
    entities = Entity.objects.filter(owner=kohaku, name_en=menou.name_en)
    if not entities.exists():
        raise RuntimeError(
            f"{kohaku.name_en}: no supply-chain entity for {menou.name_en}; "
            "load the supply-chain demo first"
        )
    entities.filter(organisation__isnull=True).update(organisation=menou)


def _build(organisations: dict[str, Organisation], now: dt.datetime) -> None:
    kohaku, menou, ruri = organisations["kohaku"], organisations["menou"], organisations["ruri"]
    owner, owner_access = _user("owner")
    kohaku_admin, kohaku_admin_access = _user(f"{cast.KOHAKU_BANK.key}-admin")
    kohaku_staff, kohaku_staff_access = _user(f"{cast.KOHAKU_BANK.key}-staff")
    menou_admin, menou_access = _user(f"{cast.MENOU_SYSTEMS.key}-admin")
    ruri_admin, ruri_access = _user(f"{cast.RURI_SHINKIN.key}-admin")
    _link_supplier(kohaku, menou)

    for actor, access, organisation, kind, value, subdomains, label in (
        (kohaku_admin, kohaku_admin_access, kohaku, "cidr", KOHAKU_BLOCK, False,
         "本店ネットワーク / Head-office network"),
        (kohaku_admin, kohaku_admin_access, kohaku, "cidr", KOHAKU_BLOCK_V6, False,
         "IPv6 / IPv6"),
        (menou_admin, menou_access, menou, "cidr", MENOU_BLOCK, False,
         "運用センター / Operations centre"),
        (ruri_admin, ruri_access, ruri, "cidr", RURI_BLOCK, False, "本部 / Head office"),
    ):  # fmt: skip
        asset = registry.register(
            actor, access, organisation, kind=kind, value=value,
            include_subdomains=subdomains, label=label, allow_documentation=True,
        )  # fmt: skip
        registry.approve(owner, owner_access, asset, reason=APPROVED)
    # Pending: the bank has not published the TXT record its page asks for yet.
    registry.register(
        kohaku_admin, kohaku_admin_access, kohaku, kind="domain", value=KOHAKU_DOMAIN,
        include_subdomains=True, label="公開サイト / Public websites",
        allow_documentation=True,
    )  # fmt: skip
    # Refused: Ruri claims a block that overlaps Menou's, and the scheme owner says no.
    refused = registry.register(
        ruri_admin, ruri_access, ruri, kind="cidr", value=RURI_REFUSED,
        label="旧データセンター / Former data centre", allow_documentation=True,
    )  # fmt: skip
    registry.refuse(owner, owner_access, refused, reason=REFUSED)
    for overlap in AssetOverlap.objects.filter(asset=refused):
        registry.settle_overlap(owner, owner_access, overlap, settlement=SETTLED)
    # Before the reports: every alert raised from now on is an event for the webhook.
    endpoints.create_endpoint(
        kohaku_admin, kohaku_admin_access, kohaku, url=WEBHOOK_URL,
        description="デモ: SIEM 連携（到達しません） / Demo: SIEM (never reached)",
        allow_documentation=True,
    )  # fmt: skip

    for name in REPORTS:
        feeding.import_location(name, str(REPORTS_DIR / f"{name}.csv"))

    today = timezone.localdate(now)
    for ip, state, reason, days in LIFECYCLE:
        alert = Alert.objects.get(organisation=kohaku, ip=ip)
        until = today + dt.timedelta(days=days) if days else None
        alerts.change_state(kohaku_staff, kohaku_staff_access, alert, state, reason=reason,
                            until=until)  # fmt: skip
    # Only the demo's webhook: an operator's own deliveries waiting in the same database are
    # theirs to send.
    waiting = list(
        WebhookDelivery.objects.filter(endpoint__organisation=kohaku).values_list("pk", flat=True)
    )
    delivery.deliver_due(waiting)


def _result(created: bool, organisations: list[Organisation]) -> Result:
    assets: dict[str, int] = {}
    for state in Asset.objects.filter(organisation__in=organisations).values_list(
        "state", flat=True
    ):
        assets[state] = assets.get(state, 0) + 1
    found: dict[str, int] = {}
    for state in Alert.objects.filter(organisation__in=organisations).values_list(
        "state", flat=True
    ):
        found[state] = found.get(state, 0) + 1
    deliveries: dict[str, int] = {}
    for state in WebhookDelivery.objects.filter(
        endpoint__in=WebhookEndpoint.objects.filter(organisation__in=organisations)
    ).values_list("state", flat=True):
        deliveries[state] = deliveries.get(state, 0) + 1
    notices = Alert.objects.filter(
        organisation__in=organisations, source_alert__isnull=False
    ).count()
    return Result(created, assets, found, notices, deliveries)
