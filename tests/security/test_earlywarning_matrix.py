"""Early warning in the authorization matrix: role × object × action over every early-warning
page and API endpoint, in the columns and with the outcomes of ``test_authorization_matrix``
(whose table explains them: ``done``, ``no``, ``login`` or an exact status).

What the rows say: an organisation's inbox, alerts, registry and claims are its members' alone
(everyone else gets 404, and the 404 does not name the object); its administrators and
contributors act on them, its board signatories read them; the scheme owner decides on claims
(approvals, refusals, overlaps, deadlines) and may open a claim's page, but never sees an
organisation's alerts or the rows reported about it; assessors see none of it.

The scene is built once per module inside a transaction rolled back at the end; each cell runs
in a savepoint of it and must leave the early-warning tables exactly as it found them unless it
is ``done`` (a fingerprint of everything a request here could write).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.conf import settings
from django.contrib.messages import constants as message_levels
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client, override_settings
from django.urls import get_resolver, resolve, reverse

from mamori.assessments import services as assessments
from mamori.audit.models import AuditEvent
from mamori.catalogue.services import load_bundled
from mamori.earlywarning import endpoints, registry
from mamori.earlywarning.models import (
    Alert,
    AlertState,
    Asset,
    AssetOverlap,
    AssetState,
    DeadlinePolicy,
    NotificationPreference,
    SectorSample,
    WebhookEndpoint,
)
from tests.conftest import World, api_token, built_once, client_for
from tests.earlywarning.localdns import local_dns_server
from tests.earlywarning.scene import network_feed, raise_alert
from tests.security.test_authorization_matrix import (
    PERSONA,
    ROLES,
    Personas,
    _routes,
    row,
)

pytestmark = [pytest.mark.django_db, pytest.mark.matrix]

# Markers in the two organisations' report rows: no page or answer that is not theirs may show
# them (the scheme owner's included).
BANK_ROW = "BANK-ROW-7f3a"
OTHER_ROW = "OTHER-ROW-c41d"
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@dataclass
class Scene(Personas):
    world: World
    objects: dict[str, Any]
    sessions: dict[str, str]
    tokens: dict[str, str]
    dns: Any = None
    fingerprint: tuple = ()
    extra: dict[str, Any] = field(default_factory=dict)


SUMMARIES = {
    Asset: ("COUNT(*)", "MAX(id)", "MAX(updated_at)", "SUM(LENGTH(state))"),
    AssetOverlap: ("COUNT(*)", "MAX(settled_at)"),
    Alert: ("COUNT(*)", "MAX(state_changed_at)", "SUM(LENGTH(state))", "SUM(reopened)"),
    DeadlinePolicy: ("COUNT(*)", "SUM(acknowledge_hours)"),
    WebhookEndpoint: (
        "COUNT(*)",
        "MAX(updated_at)",
        "SUM(CASE WHEN enabled THEN 1 ELSE 0 END)",
        "MAX(secret)",
    ),
    NotificationPreference: ("COUNT(*)", "MAX(updated_at)"),
    SectorSample: ("COUNT(*)", "MAX(computed_at)"),
    AuditEvent: ("COUNT(*)", "MAX(seq)"),
}


def fingerprint() -> tuple:
    columns = ", ".join(
        # The models' own table names and constant expressions: nothing from a request.
        f"(SELECT {expression} FROM {connection.ops.quote_name(model._meta.db_table)})"  # noqa: S608
        for model, expressions in SUMMARIES.items()
        for expression in expressions
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns}")
        return cursor.fetchone()


def _claim(world: World, user, organisation, kind: str, value: str) -> Asset:
    return registry.register(user, world.access(user), organisation, kind=kind, value=value)


def build_scene(dns) -> Scene:
    load_bundled()
    world = World()
    feed = network_feed("scan_rdp")
    # The bank: a verified prefix (approved with the hoster's permission), a pending prefix for
    # the owner's decisions, a pending domain to check and withdraw; an alert on the prefix.
    prefix = _claim(world, world.admin, world.bank, "cidr", "198.51.100.0/24")
    prefix = registry.approve(
        world.owner,
        world.access(world.owner),
        prefix,
        reason="RIR record",
        permission=SimpleUploadedFile("permission.pdf", PDF),
    )
    pending = _claim(world, world.admin, world.bank, "cidr", "203.0.113.0/25")
    domain = _claim(world, world.admin, world.bank, "domain", "bank.example.jp")
    alert = raise_alert(
        world.bank,
        feed=feed,
        asset=prefix,
        ip="198.51.100.7",
        port=3389,
        evidence={"ip": "198.51.100.7", "tag": BANK_ROW},
    )
    # The other bank: a verified prefix, a claim overlapping the bank's, an alert.
    theirs = _claim(world, world.other_admin, world.other_bank, "cidr", "192.0.2.0/24")
    theirs = registry.approve(None, None, theirs, reason="RIR record")
    _claim(world, world.other_admin, world.other_bank, "cidr", "198.51.100.128/25")
    other_alert = raise_alert(
        world.other_bank,
        feed=feed,
        asset=theirs,
        ip="192.0.2.9",
        evidence={"ip": "192.0.2.9", "tag": OTHER_ROW},
    )
    overlap = AssetOverlap.objects.get()
    # The bank's assessment names a web portal in its inventory (A2.8).
    assessment = world.start()
    assessments.save_answer(
        world.admin,
        world.access(world.admin),
        assessment.pk,
        "A2.8",
        [{"asset_kind": "domain", "identifier": "portal.bank.example.jp"}],
        0,
    )
    dns.serve({"_mamori.bank.example.jp": [domain.verification_token]})
    # Webhooks of both banks (loopback URLs, which the scene allows): the bank's one on, one
    # turned off; the other bank's one.
    admin, other_admin = world.access(world.admin), world.access(world.other_admin)
    hook, _secret = endpoints.create_endpoint(
        world.admin, admin, world.bank, url="https://127.0.0.1:9/bank-hook"
    )
    hook_off, _secret = endpoints.create_endpoint(
        world.admin, admin, world.bank, url="https://127.0.0.1:9/bank-off"
    )
    hook_off = endpoints.disable_endpoint(world.admin, admin, hook_off, reason="matrix")
    their_hook, _secret = endpoints.create_endpoint(
        world.other_admin, other_admin, world.other_bank, url="https://127.0.0.1:9/other-hook"
    )
    sessions, tokens = {}, {}
    for role, (persona, organisation) in PERSONA.items():
        user = getattr(world, persona)
        sessions[role] = client_for(user).cookies[settings.SESSION_COOKIE_NAME].value
        tokens[role] = api_token(user, getattr(world, organisation))
    scene = Scene(
        world=world,
        objects={
            "prefix": prefix,
            "pending": pending,
            "domain": domain,
            "alert": alert,
            "theirs": theirs,
            "other_alert": other_alert,
            "overlap": overlap,
            "hook": hook,
            "hook_off": hook_off,
            "their_hook": their_hook,
        },
        sessions=sessions,
        tokens=tokens,
        dns=dns,
    )
    scene.fingerprint = fingerprint()
    return scene


@pytest.fixture(scope="module")
def scene(django_db_setup, django_db_blocker, tmp_path_factory):
    files = tmp_path_factory.mktemp("ew-matrix-files")
    storages = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "mamori.core.storage.PrivateFileStorage",
            "OPTIONS": {"location": files, "base_url": None},
        },
    }
    with (
        local_dns_server() as dns,
        override_settings(
            STORAGES=storages,
            PRIVATE_FILES_ROOT=files,
            EARLYWARNING_DOCUMENTATION_ASSETS=True,
            DNS_RESOLVER=dns.host,
            DNS_PORT=dns.port,
            DNS_TIMEOUT_SECONDS=2,
            WEBHOOK_ALLOW_LOOPBACK=True,
        ),
        built_once(django_db_blocker, lambda: build_scene(dns)) as built,
    ):
        yield built


# --- Actions ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    method: str
    url: Callable[[Scene], str]
    data: Callable[[Scene], Any] | None = None
    api: bool = False
    ok: int = 302
    effect: Callable[[Scene, Any], None] | None = None


def _page(name: str, obj: str | None = None, organisation: str | None = None):
    def url(scene: Scene) -> str:
        if obj is not None:
            return reverse(f"earlywarning:{name}", args=[scene.objects[obj].pk])
        if organisation is not None:
            return reverse(f"earlywarning:{name}", args=[getattr(scene.world, organisation).pk])
        return reverse(f"earlywarning:{name}")

    return url


def _api(path: str, obj: str | None = None):
    def url(scene: Scene) -> str:
        return path.format(pk=scene.objects[obj].pk if obj else "")

    return url


def _fresh(scene: Scene, name: str):
    obj = scene.objects[name]
    return type(obj).objects.get(pk=obj.pk)


def _event(action: str, user) -> None:
    event = AuditEvent.objects.latest("seq")
    assert (event.action, event.actor_id) == (action, user.pk)


def _acknowledged(name: str):
    def check(scene: Scene, user) -> None:
        alert = _fresh(scene, name)
        assert (alert.state, alert.changed_by) == (AlertState.ACKNOWLEDGED, user)
        _event("earlywarning.alert.state", user)

    return check


def _registered(value: str, organisation: str = "bank"):
    def check(scene: Scene, user) -> None:
        asset = Asset.objects.get(value=value)
        assert (asset.organisation, asset.created_by) == (getattr(scene.world, organisation), user)
        assert asset.state == AssetState.PENDING
        _event("earlywarning.asset.register", user)

    return check


def _verified(scene: Scene, user) -> None:
    domain = _fresh(scene, "domain")
    assert (domain.state, domain.method) == (AssetState.VERIFIED, "dns_txt")
    _event("earlywarning.asset.verify", user)


def _withdrawn(scene: Scene, user) -> None:
    assert _fresh(scene, "domain").state == AssetState.WITHDRAWN
    _event("earlywarning.asset.withdraw", user)


def _decided(state: str):
    def check(scene: Scene, user) -> None:
        pending = _fresh(scene, "pending")
        assert (pending.state, pending.decided_by) == (state, user)
        _event(f"earlywarning.asset.{'approve' if state == 'verified' else 'refuse'}", user)

    return check


def _settled(scene: Scene, user) -> None:
    overlap = _fresh(scene, "overlap")
    assert (overlap.settled_by, overlap.settlement) == (user, "matrix")
    _event("earlywarning.overlap.settle", user)


def _deadlines_set(scene: Scene, user) -> None:
    assert DeadlinePolicy.objects.get(type="incident").acknowledge_hours == 2
    _event("earlywarning.deadlines.set", user)


def _webhook_added(scene: Scene, user) -> None:
    added = WebhookEndpoint.objects.get(url="https://127.0.0.1:9/matrix")
    assert (added.organisation, added.created_by) == (scene.world.bank, user)
    _event("earlywarning.webhook.create", user)


def _webhook_is(name: str, *, enabled: bool, action: str):
    def check(scene: Scene, user) -> None:
        assert _fresh(scene, name).enabled is enabled
        _event(f"earlywarning.webhook.{action}", user)

    return check


def _webhook_removed(name: str):
    def check(scene: Scene, user) -> None:
        assert not WebhookEndpoint.objects.filter(pk=scene.objects[name].pk).exists()
        _event("earlywarning.webhook.delete", user)

    return check


def _secret_rotated(scene: Scene, user) -> None:
    assert _fresh(scene, "hook").secret != scene.objects["hook"].secret
    _event("earlywarning.webhook.rotate_secret", user)


def _preferences_set(scene: Scene, user) -> None:
    chosen = NotificationPreference.objects.get(user=user, organisation=scene.world.bank)
    assert (chosen.immediate, chosen.daily_digest) == (["incident"], False)


def _sector_sampled(scene: Scene, user) -> None:
    assert SectorSample.objects.get().day.isoformat() == "2026-11-02"


def _time_zone_set(scene: Scene, user) -> None:
    # A preference kept in the session: nothing else is written.
    assert fingerprint() == scene.fingerprint


HOURS = {
    "incident": "2",
    "network_abuse": "12",
    "exposure": "24",
    "software_vulnerability": "24",
    "supplier_exposure": "24",
}

ACTIONS: dict[str, Action] = {
    "index": Action("get", _page("index")),
    # Where e-mails point for "every alert of the organisation": the same as the start page
    "alerts-home": Action("get", _page("alerts")),
    "inbox-bank": Action("get", _page("inbox", organisation="bank")),
    "inbox-other": Action("get", _page("inbox", organisation="other_bank")),
    "alert-bank": Action("get", _page("alert", "alert")),
    "alert-other": Action("get", _page("alert", "other_alert")),
    "alert-state": Action(
        "post",
        _page("alert_state", "alert"),
        lambda s: {"state": "acknowledged"},
        effect=_acknowledged("alert"),
    ),
    "alert-state-other": Action(
        "post",
        _page("alert_state", "other_alert"),
        lambda s: {"state": "acknowledged"},
        effect=_acknowledged("other_alert"),
    ),
    "time-zone": Action(
        "post",
        _page("time_zone"),
        lambda s: {"time_zone": "UTC", "next": "/"},
        effect=_time_zone_set,
    ),
    "assets-bank": Action("get", _page("assets", organisation="bank")),
    "assets-other": Action("get", _page("assets", organisation="other_bank")),
    "register": Action(
        "post",
        _page("assets", organisation="bank"),
        lambda s: {"kind": "ip", "value": "198.51.100.77"},
        effect=_registered("198.51.100.77"),
    ),
    "asset-bank": Action("get", _page("asset", "prefix")),
    "asset-other": Action("get", _page("asset", "theirs")),
    "asset-check": Action("post", _page("asset_check", "domain"), effect=_verified),
    "asset-withdraw": Action("post", _page("asset_withdraw", "domain"), effect=_withdrawn),
    "asset-permission": Action("get", _page("asset_permission", "prefix")),
    "import-form": Action("get", _page("assets_import", organisation="bank")),
    "import": Action(
        "post",
        _page("assets_import", organisation="bank"),
        lambda s: {"file": SimpleUploadedFile("m.csv", b"kind,value\nip,198.51.100.99\n")},
        effect=_registered("198.51.100.99"),
    ),
    "export": Action("get", _page("assets_export", organisation="bank")),
    "from-assessment-form": Action("get", _page("assets_from_assessment", organisation="bank")),
    "from-assessment": Action(
        "post",
        _page("assets_from_assessment", organisation="bank"),
        lambda s: {"choice": "domain|portal.bank.example.jp|0"},
        effect=_registered("portal.bank.example.jp"),
    ),
    "approvals": Action("get", _page("approvals")),
    "approve": Action(
        "post",
        _page("approve", "pending"),
        lambda s: {"reason": "matrix"},
        effect=_decided(AssetState.VERIFIED),
    ),
    "refuse": Action(
        "post",
        _page("refuse", "pending"),
        lambda s: {"reason": "matrix"},
        effect=_decided(AssetState.REFUSED),
    ),
    "overlaps": Action("get", _page("overlaps")),
    "settle": Action(
        "post", _page("settle", "overlap"), lambda s: {"settlement": "matrix"}, effect=_settled
    ),
    "deadlines": Action("get", _page("deadlines")),
    "deadlines-set": Action("post", _page("deadlines"), lambda s: HOURS, effect=_deadlines_set),
    "sector": Action("get", _page("sector")),
    "sector-sample": Action(
        "post", _page("sector"), lambda s: {"day": "2026-11-02"}, effect=_sector_sampled
    ),
    "webhooks-bank": Action("get", _page("webhooks", organisation="bank")),
    "webhooks-other": Action("get", _page("webhooks", organisation="other_bank")),
    # The answer shows the new secret once (200, not a redirect)
    "webhook-create": Action(
        "post",
        _page("webhooks", organisation="bank"),
        lambda s: {"url": "https://127.0.0.1:9/matrix"},
        ok=200,
        effect=_webhook_added,
    ),
    "webhook-bank": Action("get", _page("webhook", "hook")),
    "webhook-other": Action("get", _page("webhook", "their_hook")),
    "webhook-disable": Action(
        "post",
        _page("webhook_disable", "hook"),
        lambda s: {"reason": "matrix"},
        effect=_webhook_is("hook", enabled=False, action="disable"),
    ),
    "webhook-enable": Action(
        "post",
        _page("webhook_enable", "hook_off"),
        effect=_webhook_is("hook_off", enabled=True, action="enable"),
    ),
    "webhook-rotate": Action(
        "post", _page("webhook_rotate", "hook"), ok=200, effect=_secret_rotated
    ),
    "webhook-delete": Action(
        "post", _page("webhook_delete", "hook"), effect=_webhook_removed("hook")
    ),
    "notifications-bank": Action("get", _page("notifications", organisation="bank")),
    "notifications-other": Action("get", _page("notifications", organisation="other_bank")),
    "notifications-set": Action(
        "post",
        _page("notifications", organisation="bank"),
        lambda s: {"immediate": ["incident"]},
        effect=_preferences_set,
    ),
    # --- API, with each role's token (scoped to the persona's organisation) ----------------
    "api:alerts": Action("get", _api("/api/earlywarning/alerts/"), api=True),
    "api:alert-bank": Action("get", _api("/api/earlywarning/alerts/{pk}/", "alert"), api=True),
    "api:alert-other": Action(
        "get", _api("/api/earlywarning/alerts/{pk}/", "other_alert"), api=True
    ),
    "api:alert-state": Action(
        "post",
        _api("/api/earlywarning/alerts/{pk}/state/", "alert"),
        lambda s: {"state": "acknowledged"},
        api=True,
        ok=200,
        effect=_acknowledged("alert"),
    ),
    "api:assets": Action("get", _api("/api/earlywarning/assets/"), api=True),
    "api:asset-bank": Action("get", _api("/api/earlywarning/assets/{pk}/", "prefix"), api=True),
    "api:assets-create": Action(
        "post",
        _api("/api/earlywarning/assets/"),
        lambda s: {"kind": "ip", "value": "198.51.100.88", "organisation": s.world.bank.pk},
        api=True,
        ok=201,
        effect=_registered("198.51.100.88"),
    ),
}

# fmt: off
#                            adm  con  sig  asg  sba  oba  own  ooa  out  anon
ROWS = {
    # A member of one organisation goes to its inbox; the scheme owner finds the queues
    "index":                "302  302  302  404  404  404  200  302  404  login",
    "alerts-home":          "302  302  302  404  404  404  200  302  404  login",
    "inbox-bank":           "200  200  200  404  404  404  404  404  404  login",
    "inbox-other":          "404  404  404  404  404  404  404  200  404  login",
    "alert-bank":           "200  200  200  404  404  404  404  404  404  login",
    "alert-other":          "404  404  404  404  404  404  404  200  404  login",
    # Acknowledging: administrators and contributors; the signatory is told why (403)
    "alert-state":          "done done 403  404  404  404  404  404  404  login",
    "alert-state-other":    "404  404  404  404  404  404  404  done 404  login",
    # The viewer's own time zone, for anyone signed in
    "time-zone":            "done done done done done done done done done login",
    "assets-bank":          "200  200  200  404  404  404  404  404  404  login",
    "assets-other":         "404  404  404  404  404  404  404  200  404  login",
    "register":             "done done 403  404  404  404  404  404  404  login",
    # A claim's page: its organisation's members, and the scheme owner who decides on it
    "asset-bank":           "200  200  200  404  404  404  200  404  404  login",
    "asset-other":          "404  404  404  404  404  404  200  200  404  login",
    # The DNS check: the organisation's editors, and the scheme owner; the signatory is told no
    "asset-check":          "done done no   404  404  404  done 404  404  login",
    "asset-withdraw":       "done done no   404  404  404  no   404  404  login",
    # The hoster's permission: those who asked for the approval and the scheme owner
    "asset-permission":     "200  200  404  404  404  404  200  404  404  login",
    "import-form":          "200  200  404  404  404  404  404  404  404  login",
    "import":               "done done 404  404  404  404  404  404  404  login",
    "export":               "200  200  200  404  404  404  404  404  404  login",
    "from-assessment-form": "200  200  404  404  404  404  404  404  404  login",
    "from-assessment":      "done done 404  404  404  404  404  404  404  login",
    "approvals":            "404  404  404  404  404  404  200  404  404  login",
    "approve":              "404  404  404  404  404  404  done 404  404  login",
    "refuse":               "404  404  404  404  404  404  done 404  404  login",
    "overlaps":             "404  404  404  404  404  404  200  404  404  login",
    "settle":               "404  404  404  404  404  404  done 404  404  login",
    "deadlines":            "404  404  404  404  404  404  200  404  404  login",
    "deadlines-set":        "404  404  404  404  404  404  done 404  404  login",
    # The sector's figures (no organisation named): the scheme owner alone
    "sector":               "404  404  404  404  404  404  200  404  404  login",
    "sector-sample":        "404  404  404  404  404  404  done 404  404  login",
    # Webhooks: the organisation's administrators alone; its other members do not find them
    "webhooks-bank":        "200  404  404  404  404  404  404  404  404  login",
    "webhooks-other":       "404  404  404  404  404  404  404  200  404  login",
    "webhook-create":       "done 404  404  404  404  404  404  404  404  login",
    "webhook-bank":         "200  404  404  404  404  404  404  404  404  login",
    "webhook-other":        "404  404  404  404  404  404  404  200  404  login",
    "webhook-disable":      "done 404  404  404  404  404  404  404  404  login",
    "webhook-enable":       "done 404  404  404  404  404  404  404  404  login",
    "webhook-rotate":       "done 404  404  404  404  404  404  404  404  login",
    "webhook-delete":       "done 404  404  404  404  404  404  404  404  login",
    # One's own alert e-mail: every member of the organisation, for themselves
    "notifications-bank":   "200  200  200  404  404  404  404  404  404  login",
    "notifications-other":  "404  404  404  404  404  404  404  200  404  login",
    "notifications-set":    "done done done 404  404  404  404  404  404  login",
    # API: lists answer everyone signed in with their own (checked below); objects 404 outside
    "api:alerts":           "200  200  200  200  200  200  200  200  200  401",
    "api:alert-bank":       "200  200  200  404  404  404  404  404  404  401",
    "api:alert-other":      "404  404  404  404  404  404  404  200  404  401",
    "api:alert-state":      "done done 403  404  404  404  404  404  404  401",
    "api:assets":           "200  200  200  200  200  200  200  200  200  401",
    "api:asset-bank":       "200  200  200  404  404  404  404  404  404  401",
    # POST naming the bank: its editors; the signatory 403; anyone else does not find it (400)
    "api:assets-create":    "done done 403  400  400  400  400  400  400  401",
}
# A GET on an address that only acts on POST never acts: 405 (after the login check).
POST_ONLY = ("alert-state", "time-zone", "asset-check", "asset-withdraw", "approve", "refuse",
             "settle", "webhook-disable", "webhook-enable", "webhook-rotate", "webhook-delete")
GET_ON_POST_ONLY = "405  405  405  405  405  405  405  405  405  login"
# fmt: on
assert set(ROWS) == set(ACTIONS)

# What a 404 must not show an outsider, per action.
SECRETS = {
    "inbox-bank": "Test Bank",
    "inbox-other": "Other Bank",
    "alert-bank": BANK_ROW,
    "alert-other": OTHER_ROW,
    "alert-state": BANK_ROW,
    "alert-state-other": OTHER_ROW,
    "asset-bank": "198.51.100.0/24",
    "asset-other": "192.0.2.0/24",
    "asset-check": "bank.example.jp",
    "asset-withdraw": "bank.example.jp",
    "api:alert-bank": BANK_ROW,
    "api:alert-other": OTHER_ROW,
    "api:asset-bank": "198.51.100.0/24",
    "webhooks-bank": "bank-hook",
    "webhooks-other": "other-hook",
    "webhook-bank": "bank-hook",
    "webhook-other": "other-hook",
    "webhook-disable": "bank-hook",
    "webhook-rotate": "bank-hook",
    "webhook-delete": "bank-hook",
}


def send(client: Client, action: Action, scene: Scene):
    url = action.url(scene)
    data = action.data(scene) if action.data else None
    if action.method == "get":
        return client.get(url)
    if action.api:
        return client.post(url, json.dumps(data or {}), content_type="application/json")
    return client.post(url, data or {})


def levels(response) -> set[int]:
    return {message.level for message in get_messages(response.wsgi_request)}


def check_cell(scene: Scene, role: str, action: Action, expected: str, secret: str) -> None:
    response = send(scene.client(role, api=action.api), action, scene)
    status = response.status_code
    what = f"{role} got {status}, expected {expected}"
    if expected == "done":
        assert status == action.ok, what
        if not action.api:
            assert message_levels.ERROR not in levels(response), what
            assert message_levels.SUCCESS in levels(response), what
        action.effect(scene, scene.user(role))
        return
    if expected == "no":
        assert status == 302, what
        assert message_levels.ERROR in levels(response), f"{what}: no error message"
    elif expected == "login":
        assert status == 302, what
        assert response.url.startswith("/accounts/login/?next="), response.url
    else:
        assert status == int(expected), what
        if status == 404 and secret:
            assert secret not in response.content.decode(), "the 404 names the object"
        if action.api and status in (400, 401, 403, 404, 409):
            assert response.json()["detail"], "an API refusal always says why"
    assert fingerprint() == scene.fingerprint, f"{what}, but something was written"


@pytest.mark.parametrize(
    ("action", "role", "expected"),
    [
        pytest.param(action, role, outcome, id=f"{action}-{role}")
        for action, cells in ROWS.items()
        for role, outcome in row(cells).items()
    ],
)
def test_earlywarning_matrix(scene, action, role, expected):
    check_cell(scene, role, ACTIONS[action], expected, SECRETS.get(action, ""))


@pytest.mark.parametrize(
    ("action", "role", "expected"),
    [
        pytest.param(action, role, outcome, id=f"GET-{action}-{role}")
        for action in POST_ONLY
        for role, outcome in row(GET_ON_POST_ONLY).items()
    ],
)
def test_get_never_acts(scene, action, role, expected):
    check_cell(scene, role, Action("get", ACTIONS[action].url), expected, "")


# --- What each role finds in the lists ----------------------------------------------------------

# Which alerts and claims each role's inbox, registry and API lists show.
#                        alerts (inbox page + API)     claims (API)
LISTS = {
    "applicant_admin": ({"alert"}, {"prefix", "pending", "domain"}),
    "contributor": ({"alert"}, {"prefix", "pending", "domain"}),
    "signatory": ({"alert"}, {"prefix", "pending", "domain"}),
    "assigned_assessor": (set(), set()),
    "same_body_assessor": (set(), set()),
    "other_body_assessor": (set(), set()),
    "scheme_owner": (set(), set()),
    "other_org_admin": ({"other_alert"}, {"theirs", "overlapping"}),
    "outsider": (set(), set()),
}
assert set(LISTS) == set(ROLES) - {"anonymous"}


@pytest.mark.parametrize("role", list(LISTS))
def test_lists_show_exactly_what_the_role_may_see(scene, role):
    alerts, claims = LISTS[role]
    api = scene.client(role, api=True)
    listed = {item["id"] for item in api.get("/api/earlywarning/alerts/").json()["results"]}
    assert listed == {scene.objects[name].pk for name in alerts}
    expected_claims = {scene.objects[name].pk for name in claims if name in scene.objects}
    if "overlapping" in claims:
        expected_claims.add(Asset.objects.get(value="198.51.100.128/25").pk)
    listed = {item["id"] for item in api.get("/api/earlywarning/assets/").json()["results"]}
    assert listed == expected_claims
    page = scene.client(role, api=False)
    for organisation, alert in (("bank", "alert"), ("other_bank", "other_alert")):
        response = page.get(
            reverse("earlywarning:inbox", args=[getattr(scene.world, organisation).pk])
        )
        link = reverse("earlywarning:alert", args=[scene.objects[alert].pk])
        assert (link in response.content.decode()) == (alert in alerts), (organisation, role)


OWNER_PAGES = {
    "index": lambda s: reverse("earlywarning:index"),
    "approvals": lambda s: reverse("earlywarning:approvals"),
    "overlaps": lambda s: reverse("earlywarning:overlaps"),
    "deadlines": lambda s: reverse("earlywarning:deadlines"),
    "sector": lambda s: reverse("earlywarning:sector"),
    "bank-claim": lambda s: reverse("earlywarning:asset", args=[s.objects["prefix"].pk]),
    "other-claim": lambda s: reverse("earlywarning:asset", args=[s.objects["theirs"].pk]),
}


@pytest.mark.parametrize("page", list(OWNER_PAGES))
def test_the_scheme_owner_sees_claims_never_alerts_or_raw_rows(scene, page):
    response = scene.client("scheme_owner", api=False).get(OWNER_PAGES[page](scene))
    assert response.status_code == 200
    text = response.content.decode()
    assert BANK_ROW not in text
    assert OTHER_ROW not in text
    assert "/earlywarning/alerts/" not in text
    api = scene.client("scheme_owner", api=True)
    for url in ("/api/earlywarning/alerts/", "/api/earlywarning/assets/"):
        assert api.get(url).json()["results"] == []


def test_the_owner_decides_on_claims_from_the_queues(scene):
    owner = scene.client("scheme_owner", api=False)
    approvals = owner.get(reverse("earlywarning:approvals")).content.decode()
    assert f'id="claim-{scene.objects["pending"].pk}"' in approvals
    overlaps = owner.get(reverse("earlywarning:overlaps")).content.decode()
    assert f'id="overlap-{scene.objects["overlap"].pk}"' in overlaps
    assert fingerprint() == scene.fingerprint


# --- The matrix covers every early-warning address ---------------------------------------------


def test_every_earlywarning_url_is_in_the_matrix(scene):
    """A new early-warning page or endpoint fails here until this matrix says who may use it
    (the main matrix leaves ``earlywarning/`` and ``api/earlywarning/`` to this one)."""
    every = {
        route
        for route in _routes(get_resolver().url_patterns)
        if route.startswith(("earlywarning/", "api/earlywarning/")) and "(?P<format>" not in route
    }
    covered = {resolve(action.url(scene).split("?")[0]).route for action in ACTIONS.values()}
    assert every - covered == set()
