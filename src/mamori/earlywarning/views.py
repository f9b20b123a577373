"""Early-warning pages of an organisation: the inbox of alerts and one alert with its evidence,
remediation, history and lifecycle actions; and the viewer's choice of time zone.

Views translate HTTP to queries and service calls. Alerts are read through
``Alert.objects.visible_to`` (an organisation's members only), so anyone else, the scheme owner
included, is answered 404. Times are shown in the viewer's time zone (``display``).
"""

from __future__ import annotations

import functools

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from mamori.audit.models import AuditEvent
from mamori.core.errors import MamoriError, add_to_form
from mamori.earlywarning import alerts, display, permissions, queues
from mamori.earlywarning.filters import AlertFilter, inbox_order
from mamori.earlywarning.forms import AlertStateForm, TimeZoneForm, actions_for
from mamori.earlywarning.models import Alert, AlertState, Asset, AssetState
from mamori.organisations.access import Access
from mamori.organisations.models import Organisation

PAGE_SIZE = 50
HISTORY_ACTIONS = {
    "earlywarning.alert.raise": gettext_lazy("Raised"),
    "earlywarning.alert.reopen": gettext_lazy("Reopened: seen again after it was dealt with"),
    "earlywarning.alert.state": gettext_lazy("State changed"),
    "earlywarning.alert.risk_expired": gettext_lazy("Risk acceptance expired: open again"),
}


def _access(request) -> Access:
    return Access.for_request(request)


def _posted(request, *, files: bool = False) -> tuple:
    """A form's data: bound on POST even when nothing was sent (an empty POST is an error to
    show, not a blank form), unbound otherwise."""
    if request.method != "POST":
        return (None, None) if files else (None,)
    return (request.POST, request.FILES) if files else (request.POST,)


def status_of(exc: MamoriError) -> int:
    """A refusal's status on a page: bad input is 422 (the form is shown again with the
    reason), 403 and 409 as they are."""
    return 422 if exc.status == 400 else exc.status


def in_viewer_time_zone(view):
    """Render the page in the time zone the viewer chose (Japan's by default)."""

    @functools.wraps(view)
    def wrapped(request, *args, **kwargs):
        with timezone.override(display.viewer_time_zone(request)):
            return view(request, *args, **kwargs)

    return wrapped


def member_organisation(request, pk: int) -> Organisation:
    """An organisation whose early-warning pages the viewer may open, else 404."""
    if not permissions.can_view_organisation(_access(request), pk):
        raise Http404
    return get_object_or_404(Organisation, pk=pk)


def _get_alert(request, pk: int) -> Alert:
    return get_object_or_404(
        Alert.objects.visible_to(_access(request)).select_related(
            "organisation", "asset", "host", "feed"
        ),
        pk=pk,
    )


@login_required
def index(request):
    """Where the navigation link leads: a member of one organisation goes to its inbox; a member
    of several chooses; the scheme owner finds the approvals, overlaps and deadlines."""
    access = _access(request)
    organisations = list(
        Organisation.objects.filter(pk__in=access.applicant_organisation_ids).order_by(
            "name_ja", "pk"
        )
    )
    if len(organisations) == 1 and not access.is_scheme_owner:
        return redirect("earlywarning:inbox", organisation=organisations[0].pk)
    if not organisations and not access.is_scheme_owner:
        raise Http404
    open_counts = dict(
        Alert.objects.visible_to(access)
        .open()
        .filter(organisation__in=organisations)
        .order_by()
        .values("organisation_id")
        .annotate(number=Count("pk"))
        .values_list("organisation_id", "number")
    )
    for organisation in organisations:
        organisation.open_alerts = open_counts.get(organisation.pk, 0)
        organisation.manages_webhooks = permissions.can_manage_webhooks(access, organisation.pk)
    owner = access.is_scheme_owner
    return render(
        request,
        "earlywarning/index.html",
        {
            "organisations": organisations,
            "is_scheme_owner": owner,
            "pending": queues.approval_queue().count() if owner else 0,
            "overlaps": queues.open_overlaps().count() if owner else 0,
        },
    )


def _empty_state(assets) -> str:
    """What the organisation should do next when its inbox is empty."""
    if not assets.exists():
        return "register"
    if not assets.filter(state=AssetState.VERIFIED).exists():
        return "verify"
    return "quiet"


@login_required
@in_viewer_time_zone
def inbox(request, organisation: int):
    access = _access(request)
    organisation = member_organisation(request, organisation)
    assets = Asset.objects.filter(organisation=organisation).order_by("kind", "value", "pk")
    filters = AlertFilter(request.GET or None, assets=assets)
    found = filters.narrow(
        Alert.objects.visible_to(access)
        .filter(organisation=organisation)
        # The evidence is read too: a supplier notice's names its service.
        .select_related("asset", "host")
    )
    page = Paginator(inbox_order(found), PAGE_SIZE).get_page(request.GET.get("page"))
    now = timezone.now()
    for alert in page.object_list:
        alert.category_label = display.category_label(alert)
        alert.overdue = alert.is_open and alert.due_at is not None and alert.due_at < now
    filtered = bool(filters.conditions)
    return render(
        request,
        "earlywarning/inbox.html",
        {
            "organisation": organisation,
            "filters": filters,
            "page": page,
            "filtered": filtered,
            "query": filters.query_string(),
            "empty_state": _empty_state(assets) if not (filtered or page.object_list) else "",
            "can_register": permissions.can_register(access, organisation.pk),
            "can_manage_webhooks": permissions.can_manage_webhooks(access, organisation.pk),
            "time_zone_form": TimeZoneForm(
                initial={
                    "time_zone": timezone.get_current_timezone_name(),
                    "next": request.get_full_path(),
                }
            ),
            "common_time_zones": display.COMMON_TIME_ZONES,
        },
    )


def _history(alert: Alert) -> list[dict]:
    events = AuditEvent.objects.filter(
        object_type=Alert._meta.label_lower, object_id=str(alert.pk)
    ).order_by("seq")
    labels = dict(AlertState.choices)
    rows = []
    for event in events:
        details = event.details or {}
        change = ""
        if event.action == "earlywarning.alert.state":
            change = "{} → {}".format(
                labels.get(details.get("from"), details.get("from", "")),
                labels.get(details.get("to"), details.get("to", "")),
            )
        rows.append(
            {
                "at": event.created_at,
                "what": HISTORY_ACTIONS.get(event.action, event.action),
                "change": change,
                "reason": details.get("reason", ""),
                "until": details.get("until", ""),
                "actor": event.actor_name if event.actor_id else _("Mamori"),
            }
        )
    return rows


def render_alert(request, alert: Alert, *, failed: AlertStateForm | None = None, status=200):
    access = _access(request)
    now = timezone.now()
    return render(
        request,
        "earlywarning/alert.html",
        {
            "alert": alert,
            "category_label": display.category_label(alert),
            "evidence": display.evidence_rows(alert.evidence),
            "grading": display.grading(alert),
            "remediation": display.remediation(alert),
            "history": _history(alert),
            "overdue": alert.is_open and alert.due_at is not None and alert.due_at < now,
            "can_handle": permissions.can_handle(access, alert),
            "actions": actions_for(alert, failed) if permissions.can_handle(access, alert) else [],
            "refusal": _refusal(alert, failed),
        },
        status=status,
    )


def _refusal(alert: Alert, failed: AlertStateForm | None) -> list[str]:
    """What refused an action and belongs to no action's form: the role, or a state that is
    none of the actions offered (a hand-made request)."""
    if failed is None:
        return []
    shown = {action["state"] for action in actions_for(alert)}
    problems = list(failed.non_field_errors())
    if failed.data.get("state") not in shown:
        problems += [
            "{}: {}".format(failed.fields[name].label, " ".join(errors))
            for name, errors in failed.errors.items()
            if name in failed.fields
        ]
    return problems


@login_required
@in_viewer_time_zone
def alert_detail(request, pk: int):
    return render_alert(request, _get_alert(request, pk))


@login_required
@require_POST
@in_viewer_time_zone
def alert_state(request, pk: int):
    """One lifecycle action (the alert page's buttons). A refusal shows the page again with the
    reason at the form: 422 for bad input, 403 for a role that does not handle alerts, 409 for
    a state that does not allow it."""
    access = _access(request)
    alert = _get_alert(request, pk)
    form = AlertStateForm(request.POST)
    if not permissions.can_handle(access, alert):
        form.is_valid()
        form.add_error(
            None, _("Only the organisation's administrators and contributors handle its alerts.")
        )
        return render_alert(request, alert, failed=form, status=403)
    if not form.is_valid():
        return render_alert(request, alert, failed=form, status=422)
    try:
        alert = alerts.change_state(
            request.user,
            access,
            alert,
            form.cleaned_data["state"],
            reason=form.cleaned_data["reason"],
            until=form.cleaned_data["until"],
        )
    except MamoriError as exc:
        add_to_form(form, exc)
        return render_alert(request, _get_alert(request, pk), failed=form, status=status_of(exc))
    messages.success(
        request, _("The alert is now %(state)s.") % {"state": alert.get_state_display()}
    )
    return redirect("earlywarning:alert", pk=alert.pk)


@login_required
@require_POST
def set_time_zone(request):
    """Remember the viewer's time zone for this session; back to the page it was chosen on."""
    form = TimeZoneForm(request.POST)
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        target = reverse("earlywarning:index")
    if form.is_valid():
        request.session[display.TIME_ZONE_SESSION_KEY] = form.cleaned_data["time_zone"]
        messages.success(
            request,
            _("Times are shown in %(zone)s.") % {"zone": form.cleaned_data["time_zone"]},
        )
    else:
        messages.error(request, " ".join(form.errors.get("time_zone", [_("Choose a time zone.")])))
    return redirect(target)
