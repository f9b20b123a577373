"""The pages that get an organisation's alerts out and the scheme owner's sector figures: webhooks
(the secret shown once, turning off and on, rotating, the delivery log of real attempts), one's
own alert e-mail, and the sector's stored days; bad input comes back as form errors, never a
server error. In Japanese (the default) and English."""

from __future__ import annotations

import datetime as dt
import socket
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone

from mamori.audit.models import AuditEvent
from mamori.earlywarning import alerts, delivery, endpoints, notify, sector
from mamori.earlywarning.models import (
    AlertState,
    DeliveryState,
    NotificationPreference,
    SectorSample,
    WebhookDelivery,
    WebhookEndpoint,
)
from mamori.earlywarning.tasks import sample_sector
from mamori.organisations.models import Organisation
from tests.conftest import client_for
from tests.earlywarning.scene import raise_alert

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _loopback_receivers(settings):
    """Webhook URLs on this machine's loopback, which only tests may register."""
    settings.WEBHOOK_ALLOW_LOOPBACK = True
    settings.WEBHOOK_TIMEOUT_SECONDS = 2


def english(client):
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    return client


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released): connections are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def add_webhook(world, url: str):
    return endpoints.create_endpoint(world.admin, world.access(world.admin), world.bank, url=url)


# --- Webhooks ----------------------------------------------------------------------------------


def test_an_administrator_adds_a_webhook_and_sees_its_secret_once(world):
    admin = client_for(world.admin)
    page = reverse("earlywarning:webhooks", args=[world.bank.pk])
    empty = admin.get(page)
    assert empty.status_code == 200
    text = empty.content.decode()
    assert 'id="no-webhooks"' in text
    assert "ウェブフック" in text  # Japanese by default

    added = admin.post(page, {"url": "https://127.0.0.1:8443/hook", "description": "SIEM"})
    assert added.status_code == 200
    endpoint = WebhookEndpoint.objects.get(organisation=world.bank)
    assert (endpoint.url, endpoint.description, endpoint.created_by) == (
        "https://127.0.0.1:8443/hook",
        "SIEM",
        world.admin,
    )
    shown = added.content.decode()
    assert f'<code id="webhook-secret-value">{endpoint.secret}</code>' in shown
    assert added["Cache-Control"] == "private, no-store"
    assert AuditEvent.objects.filter(action="earlywarning.webhook.create").count() == 1
    # Never again: not on the list, not on the webhook's own page.
    for again in (page, reverse("earlywarning:webhook", args=[endpoint.pk])):
        response = admin.get(again)
        assert response.status_code == 200
        assert endpoint.secret not in response.content.decode()
        assert 'id="webhook-secret"' not in response.content.decode()
    listed = admin.get(page).content.decode()
    assert f'data-webhook="{endpoint.pk}"' in listed


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"url": ""}, "This field is required."),
        ({"url": "https://10.0.0.1/hook"}, "10.0.0.1"),
        ({"url": "http://93.184.216.34/hook"}, "Webhook URLs must start with https://."),
        ({"url": "https://user:pw@93.184.216.34/hook"}, "must not contain a user name"),
        ({"url": "https://93.184.216.34/" + "a" * 2100}, "at most 2048 characters"),
        ({"url": "https://93.184.216.34/a\nb"}, "line"),
        ({"url": "https://127.0.0.1:8443/hook"}, "already has a webhook for"),
    ],
)
def test_a_url_that_cannot_receive_webhooks_is_a_form_error(world, settings, data, problem):
    existing, _secret = add_webhook(world, "https://127.0.0.1:8443/hook")
    if "10.0.0.1" in data["url"]:
        settings.WEBHOOK_ALLOW_LOOPBACK = False  # production: private addresses refused
    admin = english(client_for(world.admin))
    response = admin.post(reverse("earlywarning:webhooks", args=[world.bank.pk]), data)
    assert response.status_code == 422
    text = response.content.decode()
    assert problem in text, text[text.find("errorlist") - 200 : text.find("errorlist") + 400]
    assert 'id="webhook-secret"' not in text
    assert list(WebhookEndpoint.objects.values_list("pk", flat=True)) == [existing.pk]


def test_turning_a_webhook_off_and_on_and_rotating_its_secret(world):
    endpoint, first_secret = add_webhook(world, "https://127.0.0.1:8443/hook")
    admin = english(client_for(world.admin))
    detail = reverse("earlywarning:webhook", args=[endpoint.pk])
    off = reverse("earlywarning:webhook_disable", args=[endpoint.pk])

    too_long = admin.post(off, {"reason": "x" * 2001})
    assert too_long.status_code == 422
    assert "at most 2000 characters" in too_long.content.decode()
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).enabled

    assert admin.post(off, {"reason": "receiver moved"}).url == detail
    page = admin.get(detail).content.decode()
    assert "receiver moved" in page
    assert 'id="enable-webhook"' in page
    assert 'id="disable-webhook"' not in page
    # Twice: told it is already off, nothing changes.
    again = admin.post(off, {"reason": "again"}, follow=True)
    assert "This webhook is already turned off." in again.content.decode()
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).disabled_reason == "receiver moved"

    assert admin.post(reverse("earlywarning:webhook_enable", args=[endpoint.pk])).url == detail
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).enabled

    rotated = admin.post(reverse("earlywarning:webhook_rotate", args=[endpoint.pk]))
    assert rotated.status_code == 200
    assert rotated["Cache-Control"] == "private, no-store"
    new_secret = WebhookEndpoint.objects.get(pk=endpoint.pk).secret
    assert new_secret != first_secret
    assert f'<code id="webhook-secret-value">{new_secret}</code>' in rotated.content.decode()
    assert new_secret not in admin.get(detail).content.decode()
    actions = list(
        AuditEvent.objects.filter(action__startswith="earlywarning.webhook")
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert actions == [
        "earlywarning.webhook.create",
        "earlywarning.webhook.disable",
        "earlywarning.webhook.enable",
        "earlywarning.webhook.rotate_secret",
    ]


def test_removing_a_webhook_takes_its_log_and_makes_room_under_the_limit(world):
    """Ten webhooks at most: the eleventh is refused until one is removed; removing it takes
    its delivery log and waiting deliveries with it, and the trail keeps that it was there."""
    hooks = [add_webhook(world, f"https://127.0.0.1:8443/hook{number}")[0] for number in range(10)]
    admin = english(client_for(world.admin))
    listing = reverse("earlywarning:webhooks", args=[world.bank.pk])
    full = admin.post(listing, {"url": "https://127.0.0.1:8443/eleventh"})
    assert full.status_code == 422
    assert "at most 10 webhooks; remove one first" in full.content.decode()

    removed = hooks[0]
    notify.alerts_raised(alerts.Upserted(new=[raise_alert(world.bank)]))
    assert WebhookDelivery.objects.filter(endpoint=removed).count() == 1
    page = admin.get(reverse("earlywarning:webhook", args=[removed.pk])).content.decode()
    assert 'id="delete-webhook"' in page
    assert "data-confirm=" in page[page.index('id="delete-webhook"') - 200 :]
    # Only on POST: a GET (a prefetching browser, a link) removes nothing.
    delete = reverse("earlywarning:webhook_delete", args=[removed.pk])
    assert admin.get(delete).status_code == 405
    answer = admin.post(delete, follow=True)
    assert answer.redirect_chain == [(listing, 302)]
    assert "The webhook for https://127.0.0.1:8443/hook0 was removed" in answer.content.decode()
    assert not WebhookEndpoint.objects.filter(pk=removed.pk).exists()
    assert not WebhookDelivery.objects.filter(endpoint_id=removed.pk).exists()
    assert WebhookDelivery.objects.filter(endpoint=hooks[1]).count() == 1
    (entry,) = AuditEvent.objects.filter(action="earlywarning.webhook.delete")
    assert (entry.actor, entry.details) == (
        world.admin,
        {"url": "https://127.0.0.1:8443/hook0", "enabled": True, "deliveries": 1},
    )
    assert admin.post(delete).status_code == 404  # gone
    assert admin.post(listing, {"url": "https://127.0.0.1:8443/eleventh"}).status_code == 200


def test_the_delivery_log_shows_each_real_attempt(world):
    endpoint, _secret = add_webhook(world, f"https://127.0.0.1:{closed_port()}/hook")
    alert = raise_alert(world.bank)
    notify.alerts_raised(alerts.Upserted(new=[alert]))  # as a feed does after its upsert
    waiting = WebhookDelivery.objects.get(endpoint=endpoint)
    assert waiting.state == DeliveryState.PENDING
    report = delivery.deliver_due()  # a real connection, refused: nothing listens there
    assert report.failed == 1
    failed = WebhookDelivery.objects.get(pk=waiting.pk)
    assert (failed.state, failed.attempt) == (DeliveryState.FAILED, 1)

    admin = english(client_for(world.admin))
    page = admin.get(reverse("earlywarning:webhook", args=[endpoint.pk])).content.decode()
    row = page[page.index(f'data-delivery="{failed.pk}"') :]
    row = row[: row.index("</tr>")]
    assert "Alert raised" in row
    assert "Failed; to be tried again" in row
    assert f"#{alert.pk}" in row
    assert "<td>1</td>" in row
    assert failed.last_error[:30] in row
    # The next attempt and the last attempt are shown as moments (UTC kept in datetime=).
    stamp = failed.next_attempt_at.astimezone(dt.UTC).isoformat(timespec="seconds")
    assert stamp.replace("+00:00", "Z") in row
    listed = admin.get(reverse("earlywarning:webhooks", args=[world.bank.pk])).content.decode()
    assert "1 failed attempt in a row" in listed

    japanese = client_for(world.admin).get(reverse("earlywarning:webhook", args=[endpoint.pk]))
    assert "配信記録" in japanese.content.decode()


def test_only_administrators_find_the_webhook_pages(world):
    endpoint, _secret = add_webhook(world, "https://127.0.0.1:8443/hook")
    for user in (world.contributor, world.signatory, world.other_admin, world.owner):
        client = client_for(user)
        for url in (
            reverse("earlywarning:webhooks", args=[world.bank.pk]),
            reverse("earlywarning:webhook", args=[endpoint.pk]),
        ):
            response = client.get(url)
            assert response.status_code == 404, (user, url)
            assert "127.0.0.1:8443" not in response.content.decode()


# --- One's own alert e-mail ---------------------------------------------------------------------


def test_a_member_sees_the_defaults_and_chooses_their_own(world):
    contributor = english(client_for(world.contributor))
    page = reverse("earlywarning:notifications", args=[world.bank.pk])
    shown = contributor.get(page)
    assert shown.status_code == 200
    text = shown.content.decode()
    assert 'id="default-preferences"' in text
    # An alert handler's defaults: incidents and KEV at once, the digest on.
    assert 'value="incident" id="id_immediate_0" checked' in text
    assert 'value="kev"' in text
    assert "Vulnerability in CISA KEV" in text
    assert 'id="id_daily_digest" checked' in text

    saved = contributor.post(page, {"immediate": ["exposure", "kev"]})
    assert saved.url == page
    preference = NotificationPreference.objects.get(user=world.contributor)
    assert (preference.immediate, preference.daily_digest) == (["exposure", "kev"], False)
    text = contributor.get(page).content.decode()
    assert 'id="default-preferences"' not in text
    assert "Daily digest: off" in text
    # Only one's own: the administrator still has the defaults.
    assert not NotificationPreference.objects.filter(user=world.admin).exists()


def test_a_kind_of_alert_that_does_not_exist_is_a_form_error(world):
    signatory = english(client_for(world.signatory))
    page = reverse("earlywarning:notifications", args=[world.bank.pk])
    refused = signatory.post(page, {"immediate": ["incident", "bogus"], "daily_digest": "on"})
    assert refused.status_code == 422
    assert "bogus is not one of the available choices" in refused.content.decode()
    assert not NotificationPreference.objects.exists()
    # In Japanese by default, and a board signatory gets nothing until they ask.
    text = client_for(world.signatory).get(page).content.decode()
    assert "アラートのメール" in text
    assert "checked" not in text


def test_outsiders_do_not_find_someone_elses_alert_e_mail(world):
    page = reverse("earlywarning:notifications", args=[world.bank.pk])
    for user in (world.other_admin, world.owner, world.assessor, world.outsider):
        assert client_for(user).get(page).status_code == 404
        assert client_for(user).post(page, {"immediate": ["incident"]}).status_code == 404
    assert not NotificationPreference.objects.exists()


# --- Navigation -----------------------------------------------------------------------------------


def test_the_new_pages_are_linked_from_the_early_warning_pages(world):
    inbox = reverse("earlywarning:inbox", args=[world.bank.pk])
    webhooks = reverse("earlywarning:webhooks", args=[world.bank.pk])
    notifications = reverse("earlywarning:notifications", args=[world.bank.pk])
    admin_inbox = client_for(world.admin).get(inbox).content.decode()
    assert webhooks in admin_inbox
    assert notifications in admin_inbox
    contributor_inbox = client_for(world.contributor).get(inbox).content.decode()
    assert notifications in contributor_inbox
    assert webhooks not in contributor_inbox
    owner_index = client_for(world.owner).get(reverse("earlywarning:index")).content.decode()
    assert reverse("earlywarning:sector") in owner_index
    for name in ("approvals", "overlaps", "deadlines"):
        owner_page = client_for(world.owner).get(reverse(f"earlywarning:{name}")).content.decode()
        assert reverse("earlywarning:sector") in owner_page, name


# --- The sector's figures ----------------------------------------------------------------------

JST = dt.timezone(dt.timedelta(hours=9))


def at(day: int, hour: int) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, tzinfo=JST)


def freeze_time(moment: dt.datetime):
    return mock.patch("django.utils.timezone.now", return_value=moment)


def sighting(world, organisation, key: str, moment: dt.datetime, **fields):
    raised = alerts.upsert(
        [
            alerts.Sighting(
                organisation_id=organisation.pk, type=fields.pop("type", "exposure"), key=key,
                category="scan_rdp", seen_at=moment, **fields,
            )
        ],
        feed=None,
        now=moment,
    )  # fmt: skip
    return raised.new[0]


@pytest.fixture
def history(world):
    """Alerts of two banks on 2 November 2026 (JST), one acknowledged after three hours."""
    first = sighting(world, world.bank, "a", at(2, 9))
    sighting(world, world.other_bank, "b", at(2, 10))
    sighting(world, world.bank, "k", at(2, 11), type="software_vulnerability", kev=True)
    with freeze_time(at(2, 12)):
        alerts.change_state(world.admin, world.access(world.admin), first, AlertState.ACKNOWLEDGED)
    return first


def test_the_sector_page_starts_empty_and_computes_a_day(world, history):
    owner = english(client_for(world.owner))
    page = reverse("earlywarning:sector")
    empty = owner.get(page).content.decode()
    assert 'id="sector-empty"' in empty

    computed = owner.post(page, {"day": "2026-11-02"})
    assert computed.url == f"{page}?day=2026-11-02"
    stored = SectorSample.objects.get(day=dt.date(2026, 11, 2))
    shown = owner.get(computed.url)
    assert shown.status_code == 200
    text = shown.content.decode()
    totals = text[text.index('id="sector-totals"') :]
    assert "<tr><td>Exposure</td><td>2</td><td>2</td></tr>" in totals
    assert "<tr><td>Software vulnerability</td><td>1</td><td>1</td></tr>" in totals
    assert "<tr><td>Time to acknowledge</td><td>1</td><td>3.0</td><td>3.0</td></tr>" in totals
    assert "<tr><td>Time to mitigate</td><td>0</td><td>—</td><td>—</td></tr>" in totals
    assert "<tr><td>0–7 days</td><td>1</td></tr>" in totals
    assert stored.digest[:10] in text
    assert 'id="sector-partial"' not in text  # computed after the day ended
    # Groups of five or more institutions only, and no organisation named.
    groups = stored.figures["groups"]
    assert text.count('class="sector-group"') == len(groups)
    if not groups:
        assert 'id="no-groups"' in text
    for organisation in Organisation.objects.all():
        assert organisation.name_en not in text
        assert organisation.name_ja not in text
    # In Japanese by default.
    japanese = client_for(world.owner).get(computed.url).content.decode()
    assert "セクターの指標" in japanese


def test_today_is_computed_so_far_and_marked(world, history):
    owner = english(client_for(world.owner))
    with freeze_time(at(2, 15)):
        today = owner.post(reverse("earlywarning:sector"), {"day": "2026-11-02"})
        assert today.status_code == 302
        text = owner.get(today.url).content.decode()
    assert 'id="sector-partial"' in text
    assert SectorSample.objects.get().figures["sector"]["raised"] == {
        "exposure": 2,
        "software_vulnerability": 1,
    }


@pytest.mark.parametrize(
    ("method", "data", "problem"),
    [
        ("post", {"day": ""}, "Choose a day."),
        ("post", {"day": "2026-02-30"}, "Write the day as YYYY-MM-DD."),
        ("post", {"day": "9999-12-31"}, "has not begun yet"),
        ("post", {"day": "0001-01-01"}, "Choose a day from 2000-01-01 on."),
        ("get", {"day": "yesterday"}, "Write the day as YYYY-MM-DD."),
        ("get", {"day": "1999-12-31"}, "Choose a day from 2000-01-01 on."),
    ],
)
def test_a_bad_day_is_a_form_error(world, method, data, problem):
    owner = english(client_for(world.owner))
    response = getattr(owner, method)(reverse("earlywarning:sector"), data)
    assert response.status_code == 422
    assert problem in response.content.decode()
    assert not SectorSample.objects.exists()


def test_a_day_not_stored_says_so_and_too_few_institutions_show_nothing(world, history):
    owner = english(client_for(world.owner))
    page = reverse("earlywarning:sector")
    missing = owner.get(page, {"day": "2026-11-01"}).content.decode()
    assert 'id="sector-not-stored"' in missing
    assert "2026-11-01" in missing
    Organisation.objects.exclude(
        pk__in=[world.bank.pk, world.other_bank.pk, world.secretariat.pk]
    ).delete()
    owner.post(page, {"day": "2026-11-02"})
    text = owner.get(page, {"day": "2026-11-02"}).content.decode()
    assert 'id="too-few"' in text
    assert 'id="sector-totals"' not in text


def test_the_sector_page_is_the_scheme_owners_alone(world):
    for user in (world.admin, world.contributor, world.assessor, world.outsider):
        client = client_for(user)
        assert client.get(reverse("earlywarning:sector")).status_code == 404
        assert client.post(reverse("earlywarning:sector"), {"day": "2026-11-02"}).status_code == 404
    assert not SectorSample.objects.exists()


def test_sampling_the_sector_twice_stores_each_finished_day_once(world, history):
    """RUN_TWICE: the beat's task twice stores each finished day once; a day computed while it
    was under way is computed again once it is over."""
    with freeze_time(at(2, 15)):
        partial = sector.sample(dt.date(2026, 11, 2))
    assert partial.computed_at < sector.bounds(dt.date(2026, 11, 2))[1]
    with freeze_time(at(4, 1)):
        first = sample_sector()
        second = sample_sector()
        stored = {s.day: (s.digest, s.computed_at) for s in SectorSample.objects.all()}
    # Yesterday (3 November) and the finished days before it, the partial 2nd among them.
    assert first == [
        (dt.date(2026, 11, 3) - dt.timedelta(days=back)).isoformat()
        for back in reversed(range(sector.CATCH_UP_DAYS))
    ]
    assert second == []
    assert len(stored) == sector.CATCH_UP_DAYS
    final = SectorSample.objects.get(day=dt.date(2026, 11, 2))
    assert final.computed_at == at(4, 1)
    assert final.figures["sector"]["raised"] == {"exposure": 2, "software_vulnerability": 1}
    assert timezone.is_aware(final.computed_at)


def test_the_beat_samples_the_sector():
    from mamori.celery import app

    entry = app.conf.beat_schedule["earlywarning-sector-figures"]
    assert entry["task"] == sample_sector.name == "mamori.earlywarning.tasks.sample_sector"
    assert entry["schedule"] <= 24 * 3600
