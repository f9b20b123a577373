"""Board reporting in an authorization matrix: role × object × action over every reporting page.

The roles are the issue's: the bank's administrator (adm), contributor (con), a board member who
is not the cyber-risk owner (brd), the board member who is (rsk), an assessor (asr), the scheme
owner (sch), a supervisor observer (obs), the other bank's administrator (ooa), someone with no
membership (out) and an anonymous visitor (anon). Outcomes: ``done`` (the action happened, as
checked), ``login`` (sent to sign in) or an exact status.

What the rows say: an organisation's packs are its board's and administrators' (its contributors
and everyone else get 404, the pack's digest never in the answer); only its administrators name
the owner; only the owner signs; the sector dashboard is the scheme owner's and observers' alone.

The scene is built once per module inside a transaction rolled back at the end; each cell runs in
a savepoint of it and must leave the reporting tables as it found them unless it is ``done``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from unittest import mock

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import connection
from django.test import Client
from django.urls import reverse

from mamori.audit.models import AuditEvent
from mamori.catalogue.services import load_bundled
from mamori.organisations.models import Role
from mamori.reporting import pack, services
from mamori.reporting.models import BoardPack, CyberRiskOwner
from tests.conftest import World, api_token, built_once, client_for, make_user
from tests.reporting import scene as samples

pytestmark = [pytest.mark.django_db, pytest.mark.matrix]

ROLES = ("adm", "con", "brd", "rsk", "asr", "sch", "obs", "ooa", "out", "anon")
PERSONA = {
    "adm": "admin",
    "con": "contributor",
    "brd": "director",
    "rsk": "signatory",
    "asr": "assessor",
    "sch": "owner",
    "obs": "observer",
    "ooa": "other_admin",
    "out": "outsider",
}
OUTCOMES = {"done", "login", "200", "302", "401", "404", "422"}
# The organisation each role's API token is for (the outsider has none: it signs in).
TOKEN_FOR = {
    "adm": "bank", "con": "bank", "brd": "bank", "rsk": "bank", "asr": "body",
    "sch": "secretariat", "obs": "secretariat", "ooa": "other_bank",
}  # fmt: skip
QUARTER = pack.Period(dt.date(2026, 7, 1), dt.date(2026, 9, 30))
NOW = dt.datetime(2026, 11, 5, 1, tzinfo=dt.UTC)


@dataclass
class Scene:
    world: World
    packs: dict[str, BoardPack]
    sessions: dict[str, str]
    tokens: dict[str, str]
    fingerprint: tuple = ()

    def user(self, role: str):
        return None if role == "anon" else getattr(self.world, PERSONA[role])

    def client(self, role: str, *, api: bool = False) -> Client:
        client = Client(HTTP_ACCEPT_LANGUAGE="en")
        if api and role in self.tokens:
            client.defaults["HTTP_AUTHORIZATION"] = f"Token {self.tokens[role]}"
        elif role != "anon":
            client.cookies[settings.SESSION_COOKIE_NAME] = self.sessions[role]
        return client


def fingerprint() -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT COUNT(*) FROM reporting_boardpack),"
            " (SELECT MAX(signed_at) FROM reporting_boardpack),"
            " (SELECT COUNT(*) FROM reporting_cyberriskowner),"
            " (SELECT MAX(named_at) FROM reporting_cyberriskowner),"
            " (SELECT MAX(seq) FROM audit_auditevent)"
        )
        return cursor.fetchone()


def build_scene() -> Scene:
    load_bundled()
    world = World()
    world.director = make_user("dora", world.bank, Role.BOARD_SIGNATORY)
    world.observer = make_user("sam", world.secretariat, Role.OBSERVER, mfa=True)
    from django_otp.plugins.otp_totp.models import TOTPDevice

    TOTPDevice.objects.create(user=world.signatory, name="phone", confirmed=True)
    samples.store([world.bank, world.other_bank], every=30)
    services.name_owner(world.admin, world.access(world.admin), world.bank, world.signatory.pk)
    with mock.patch("django.utils.timezone.now", return_value=NOW):
        packs = {
            "bank": services.make_pack(world.admin, world.bank, QUARTER),
            "other": services.make_pack(world.other_admin, world.other_bank, QUARTER),
        }
    for made in packs.values():  # small stand-ins: rendering is test_pack_render's
        made.pdf_ja.save("matrix.pdf", ContentFile(b"%PDF-1.4\n%%EOF\n"), save=False)
        made.xlsx_en.save("matrix.xlsx", ContentFile(b"PK\x05\x06" + bytes(18)), save=False)
        made.rendered_at = NOW
        made.save()
    sessions = {
        role: client_for(getattr(world, persona)).cookies[settings.SESSION_COOKIE_NAME].value
        for role, persona in PERSONA.items()
    }
    tokens = {
        role: api_token(getattr(world, PERSONA[role]), getattr(world, organisation))
        for role, organisation in TOKEN_FOR.items()
    }
    built = Scene(world, packs, sessions, tokens)
    built.fingerprint = fingerprint()
    return built


@pytest.fixture(scope="module")
def scene(django_db_setup, django_db_blocker):
    with built_once(django_db_blocker, build_scene) as built:
        yield built


@dataclass(frozen=True)
class Action:
    method: str
    url: Callable[[Scene], str]
    data: Callable[[Scene], dict] | None = None
    effect: Callable[[Scene, Any], None] | None = None
    api: bool = False


def _event(action: str, user) -> None:
    event = AuditEvent.objects.latest("seq")
    assert (event.action, event.actor_id) == (action, user.pk)


def _made(scene: Scene, user) -> None:
    assert BoardPack.objects.filter(period_from=dt.date(2026, 8, 1)).count() == 1
    _event("reporting.pack_made", user)


def _named(scene: Scene, user) -> None:
    assert CyberRiskOwner.objects.get(organisation=scene.world.bank).user == scene.world.director
    _event("reporting.owner_named", user)


def _signed(scene: Scene, user) -> None:
    signed = BoardPack.objects.get(pk=scene.packs["bank"].pk)
    assert signed.signed_by == user
    _event("reporting.pack_signed", user)


def _sign_form(scene: Scene) -> dict:
    return {
        "meeting_date": "2026-10-20",
        "minutes_reference": "BM-1",
        "code": samples.totp_code(scene.world.signatory),
    }


def _url(name: str, *args: Callable[[Scene], Any]):
    return lambda s: reverse(f"reporting:{name}", args=[arg(s) for arg in args])


def _bank(s):
    return s.world.bank.pk


def _other(s):
    return s.world.other_bank.pk


def _pack(s):
    return s.packs["bank"].pk


def _other_pack(s):
    return s.packs["other"].pk


ACTIONS = {
    "index": Action("get", _url("index")),
    "organisation": Action("get", _url("organisation", _bank)),
    "organisation-other": Action("get", _url("organisation", _other)),
    "make": Action(
        "post",
        _url("make", _bank),
        lambda s: {"period_from": "2026-08-01", "period_to": "2026-08-31"},
        _made,
    ),
    "name-owner": Action(
        "post", _url("owner", _bank), lambda s: {"user": s.world.director.pk}, _named
    ),
    "pack": Action("get", _url("pack", _pack)),
    "pack-other": Action("get", _url("pack", _other_pack)),
    "pack-pdf": Action(
        "get", lambda s: reverse("reporting:pack_file", args=[_pack(s), "pdf", "ja"])
    ),
    "pack-xlsx-other": Action(
        "get", lambda s: reverse("reporting:pack_file", args=[_other_pack(s), "xlsx", "en"])
    ),
    "sign": Action("post", _url("sign", _pack), _sign_form, _signed),
    "sign-other": Action("post", _url("sign", _other_pack), _sign_form),
    "sector": Action("get", _url("sector")),
    "sector-csv": Action("get", lambda s: reverse("reporting:sector_export", args=["csv"])),
    "sector-xlsx": Action("get", lambda s: reverse("reporting:sector_export", args=["xlsx"])),
    "api-packs": Action("get", lambda s: "/api/reporting/packs/", api=True),
    "api-pack": Action("get", lambda s: f"/api/reporting/packs/{_pack(s)}/", api=True),
    "api-pack-other": Action("get", lambda s: f"/api/reporting/packs/{_other_pack(s)}/", api=True),
    "api-sector": Action("get", lambda s: "/api/reporting/sector/", api=True),
}

# fmt: off
#                        adm   con   brd   rsk   asr   sch   obs   ooa   out   anon
ROWS = {
    "index":              "302  302   302   302   200   200   200   302   200   login",
    "organisation":       "200  200   200   200   404   404   404   404   404   login",
    "organisation-other": "404  404   404   404   404   404   404   200   404   login",
    "make":               "done 404   done  done  404   404   404   404   404   login",
    "name-owner":         "done 404   404   404   404   404   404   404   404   login",
    "pack":               "200  404   200   200   404   404   404   404   404   login",
    "pack-other":         "404  404   404   404   404   404   404   200   404   login",
    "pack-pdf":           "200  404   200   200   404   404   404   404   404   login",
    "pack-xlsx-other":    "404  404   404   404   404   404   404   200   404   login",
    "sign":               "422  404   422   done  404   404   404   404   404   login",
    "sign-other":         "404  404   404   404   404   404   404   422   404   login",
    "sector":             "404  404   404   404   404   200   200   404   404   login",
    "sector-csv":         "404  404   404   404   404   200   200   404   404   login",
    "sector-xlsx":        "404  404   404   404   404   200   200   404   404   login",
    "api-packs":          "200  200   200   200   200   200   200   200   200   401",
    "api-pack":           "200  404   200   200   404   404   404   404   404   401",
    "api-pack-other":     "404  404   404   404   404   404   404   200   404   401",
    "api-sector":         "404  404   404   404   404   200   200   404   404   401",
}
# fmt: on
assert set(ROWS) == set(ACTIONS)


def row(cells: str) -> dict[str, str]:
    values = cells.split()
    assert len(values) == len(ROLES), cells
    assert set(values) <= OUTCOMES, cells
    return dict(zip(ROLES, values, strict=True))


@pytest.mark.parametrize(
    ("action", "role", "expected"),
    [
        pytest.param(action, role, outcome, id=f"{action}-{role}")
        for action, cells in ROWS.items()
        for role, outcome in row(cells).items()
    ],
)
def test_reporting_matrix(scene, action, role, expected):
    chosen = ACTIONS[action]
    client = scene.client(role, api=chosen.api)
    url = chosen.url(scene)
    with mock.patch("django.utils.timezone.now", return_value=NOW):
        if chosen.method == "get":
            response = client.get(url)
        else:
            response = client.post(url, chosen.data(scene) if chosen.data else {})
    status = response.status_code
    what = f"{role} got {status}, expected {expected}"
    if expected == "done":
        assert status == 302, what
        chosen.effect(scene, scene.user(role))
        return
    if expected == "login":
        assert status == 302, what
        assert response.url.startswith("/accounts/login/?next="), response.url
    else:
        assert status == int(expected), what
        if status == 404:
            # A 404 says nothing of the pack behind the address.
            body = response.content.decode()
            for made in scene.packs.values():
                assert made.digest not in body, what
    assert fingerprint() == scene.fingerprint, f"{what}, but something was written"


def test_every_reporting_url_is_in_the_matrix(scene):
    """A new reporting page fails here until this matrix says who may use it (the main matrix
    leaves ``reporting/`` to this one)."""
    from django.urls import get_resolver, resolve

    from tests.security.test_authorization_matrix import _routes

    every = {
        route
        for route in _routes(get_resolver().url_patterns)
        if route.startswith(("reporting/", "api/reporting/")) and "(?P<format>" not in route
    }
    covered = {resolve(action.url(scene)).route for action in ACTIONS.values()}
    assert every - covered == set()


# Which packs each role's API list shows.
LISTED = {
    "adm": {"bank"}, "con": set(), "brd": {"bank"}, "rsk": {"bank"}, "asr": set(), "sch": set(),
    "obs": set(), "ooa": {"other"}, "out": set(),
}  # fmt: skip


@pytest.mark.parametrize("role", list(LISTED))
def test_the_api_lists_exactly_the_packs_the_role_reads(scene, role):
    response = scene.client(role, api=True).get("/api/reporting/packs/")
    listed = {item["id"] for item in response.json()["results"]}
    assert listed == {scene.packs[name].pk for name in LISTED[role]}
    for item in response.json()["results"]:
        assert "content" not in item
