"""Getting an organisation's alerts out: its webhooks (for its administrators: add one, turn it
off and on, rotate its secret, read each one's delivery log) and the signed-in member's own
alert e-mail.

A webhook's secret is shown once, in the answer to the request that made it (adding the
webhook or rotating the secret), never stored anywhere else and never shown again; that answer
is not cached. Everyone who does not manage an organisation's webhooks is answered 404 for its
webhook pages, like the other pages only some of its members use.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Max, Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from mamori.core.errors import MamoriError, add_to_form
from mamori.earlywarning import endpoints, notify, permissions
from mamori.earlywarning.forms import PreferencesForm, WebhookDisableForm, WebhookForm
from mamori.earlywarning.models import (
    IMMEDIATE_CHOICES,
    RETRYABLE_DELIVERY_STATES,
    WebhookEndpoint,
)
from mamori.earlywarning.views import _access, _posted, in_viewer_time_zone, status_of
from mamori.organisations.models import Organisation

DELIVERIES_PER_PAGE = 50


def _no_store(response):
    """A page that may hold a secret (or a member's choices) is kept by no cache."""
    response["Cache-Control"] = "private, no-store"
    return response


def _managed_organisation(request, pk: int) -> Organisation:
    """An organisation whose webhooks the viewer manages (its administrators), else 404."""
    if not permissions.can_manage_webhooks(_access(request), pk):
        raise Http404
    return get_object_or_404(Organisation, pk=pk)


def _get_endpoint(request, pk: int) -> WebhookEndpoint:
    return get_object_or_404(
        WebhookEndpoint.objects.visible_to(_access(request)).select_related(
            "organisation", "created_by"
        ),
        pk=pk,
    )


def _render_webhooks(request, organisation, *, form=None, secret=None, status=200):
    listed = (
        WebhookEndpoint.objects.filter(organisation=organisation)
        .select_related("created_by")
        .annotate(
            waiting=Count("deliveries", filter=Q(deliveries__state__in=RETRYABLE_DELIVERY_STATES)),
            last_delivered=Max("deliveries__delivered_at"),
        )
        .order_by("pk")
    )
    return _no_store(
        render(
            request,
            "earlywarning/webhooks.html",
            {
                "organisation": organisation,
                "endpoints": listed,
                "form": form or WebhookForm(),
                "secret": secret,
                "limit": endpoints.MAX_ENDPOINTS_PER_ORGANISATION,
            },
            status=status,
        )
    )


@login_required
@in_viewer_time_zone
def webhooks(request, organisation: int):
    """The organisation's webhooks and (POST) a new one, whose secret the answer shows once."""
    organisation = _managed_organisation(request, organisation)
    form = WebhookForm(*_posted(request))
    if request.method != "POST":
        return _render_webhooks(request, organisation, form=form)
    if not form.is_valid():
        return _render_webhooks(request, organisation, form=form, status=422)
    try:
        endpoint, secret = endpoints.create_endpoint(
            request.user, _access(request), organisation, **form.cleaned_data
        )
    except MamoriError as exc:
        add_to_form(form, exc)
        return _render_webhooks(request, organisation, form=form, status=status_of(exc))
    messages.success(
        request,
        _("The webhook for %(url)s was added. Copy its secret now: it is not shown again.")
        % {"url": endpoint.url},
    )
    return _render_webhooks(request, organisation, secret={"endpoint": endpoint, "value": secret})


def render_webhook(request, endpoint, *, disable_form=None, secret=None, status=200):
    deliveries = endpoint.deliveries.select_related("alert").order_by("-created_at", "-pk")
    page = Paginator(deliveries, DELIVERIES_PER_PAGE).get_page(request.GET.get("page"))
    return _no_store(
        render(
            request,
            "earlywarning/webhook.html",
            {
                "endpoint": endpoint,
                "organisation": endpoint.organisation,
                "page": page,
                "disable_form": disable_form or WebhookDisableForm(),
                "secret": secret,
            },
            status=status,
        )
    )


@login_required
@in_viewer_time_zone
def webhook_detail(request, pk: int):
    """One webhook: its state and why, the buttons, and its delivery log (newest first)."""
    return render_webhook(request, _get_endpoint(request, pk))


@login_required
@require_POST
@in_viewer_time_zone
def webhook_disable(request, pk: int):
    endpoint = _get_endpoint(request, pk)
    form = WebhookDisableForm(request.POST)
    if not form.is_valid():
        return render_webhook(request, endpoint, disable_form=form, status=422)
    try:
        endpoints.disable_endpoint(
            request.user, _access(request), endpoint, reason=form.cleaned_data["reason"]
        )
    except MamoriError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("The webhook was turned off; nothing more is sent to it."))
    return redirect("earlywarning:webhook", pk=endpoint.pk)


@login_required
@require_POST
def webhook_enable(request, pk: int):
    """Turn it back on: the URL is checked again and what waited is sent."""
    endpoint = _get_endpoint(request, pk)
    try:
        endpoints.enable_endpoint(request.user, _access(request), endpoint)
    except MamoriError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request, _("The webhook is turned on again; the events that waited are sent now.")
        )
    return redirect("earlywarning:webhook", pk=endpoint.pk)


@login_required
@require_POST
@in_viewer_time_zone
def webhook_rotate(request, pk: int):
    """A new secret, shown once in this answer; the old one signs nothing more."""
    endpoint = _get_endpoint(request, pk)
    try:
        endpoint, secret = endpoints.rotate_secret(request.user, _access(request), endpoint)
    except MamoriError as exc:
        messages.error(request, exc.message)
        return redirect("earlywarning:webhook", pk=endpoint.pk)
    messages.success(
        request, _("The secret was replaced. Copy the new one now: it is not shown again.")
    )
    return render_webhook(request, endpoint, secret=secret)


@login_required
@require_POST
def webhook_delete(request, pk: int):
    """Remove the webhook and its delivery log; back to the organisation's webhooks."""
    endpoint = _get_endpoint(request, pk)
    try:
        endpoints.delete_endpoint(request.user, _access(request), endpoint)
    except MamoriError as exc:
        messages.error(request, exc.message)
        return redirect("earlywarning:webhook", pk=endpoint.pk)
    messages.success(
        request,
        _("The webhook for %(url)s was removed; nothing more is sent to it.")
        % {"url": endpoint.url},
    )
    return redirect("earlywarning:webhooks", organisation=endpoint.organisation_id)


# --- one's own alert e-mail --------------------------------------------------------------------


@login_required
def notification_settings(request, organisation: int):
    """Which alerts the signed-in member is e-mailed at once, and the daily digest."""
    access = _access(request)
    if not permissions.can_set_notifications(access, organisation):
        raise Http404
    organisation = get_object_or_404(Organisation, pk=organisation)
    current = notify.preferences_for(request.user, organisation.pk)
    form = PreferencesForm(
        *_posted(request),
        initial={"immediate": sorted(current.immediate), "daily_digest": current.daily_digest},
    )
    status = 200
    if request.method == "POST":
        if not form.is_valid():
            status = 422
        else:
            try:
                notify.set_preferences(request.user, access, organisation.pk, **form.cleaned_data)
            except MamoriError as exc:
                add_to_form(form, exc)
                status = status_of(exc)
            else:
                messages.success(request, _("Your alert e-mail settings were saved."))
                return redirect("earlywarning:notifications", organisation=organisation.pk)
    labels = dict(IMMEDIATE_CHOICES)
    return _no_store(
        render(
            request,
            "earlywarning/notifications.html",
            {
                "organisation": organisation,
                "form": form,
                "current": current,
                "current_immediate": [
                    labels[value]
                    for value, _label in IMMEDIATE_CHOICES
                    if value in current.immediate
                ],
                "is_member": permissions.can_view_organisation(access, organisation.pk),
            },
            status=status,
        )
    )
