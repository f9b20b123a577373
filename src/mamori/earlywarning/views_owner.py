"""The scheme owner's early-warning pages: the approval queue (approve an address block or AS
number with a reason and, for a range a third party hosts, the hoster's permission; or refuse
it with a reason), overlapping claims of two organisations and how they were settled, and the
deadlines to acknowledge alerts. Nobody else finds these pages (404); the site asks scheme
owners for their second factor before any page.

The scheme owner sees claims here, never an organisation's alerts or the rows reported about
them; the sector's figures count alerts without naming any organisation, and a group of fewer
than five institutions only inside the sector's totals (``earlywarning.sector``).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from mamori.assessments.uploads import inspect_upload, safe_name
from mamori.core.bodylimit import body_limit, upload_limit
from mamori.core.errors import MamoriError, add_to_form
from mamori.earlywarning import deadlines, display, permissions, queues, registry, sector
from mamori.earlywarning.forms import (
    ApproveForm,
    DeadlinesForm,
    RefuseForm,
    SectorDayForm,
    SettleForm,
)
from mamori.earlywarning.models import Asset, AssetOverlap, SectorSample
from mamori.earlywarning.views import _access, _posted, in_viewer_time_zone, status_of
from mamori.organisations.models import Category


def _ids(action: str, pk: int) -> str:
    """Element ids of one object's form: a page holds one form per claim or overlap."""
    return f"id_{action}_{pk}_%s"


def _owner(request):
    access = _access(request)
    if not permissions.can_decide(access):
        raise Http404
    return access


def _unshown(failed: dict, shown: set[int]) -> list[str]:
    """Errors of a decision on an object the page no longer lists (a claim already decided, an
    overlap already settled): said at the top, since no form there can show them."""
    problems = []
    for (_action, pk), form in failed.items():
        if pk not in shown:
            problems += [str(error) for errors in form.errors.values() for error in errors]
    return problems


def _render_approvals(request, *, failed: dict | None = None, status: int = 200):
    claims = list(queues.approval_queue())
    failed = failed or {}
    for claim in claims:
        claim.approve_form = failed.get(("approve", claim.pk)) or ApproveForm(
            auto_id=_ids("approve", claim.pk)
        )
        claim.refuse_form = failed.get(("refuse", claim.pk)) or RefuseForm(
            auto_id=_ids("refuse", claim.pk)
        )
    return render(
        request,
        "earlywarning/approvals.html",
        {"claims": claims, "problems": _unshown(failed, {claim.pk for claim in claims})},
        status=status,
    )


@login_required
@in_viewer_time_zone
def approvals(request):
    _owner(request)
    return _render_approvals(request)


@body_limit(upload_limit(lambda: settings.EVIDENCE_MAX_BYTES))
@login_required
@require_POST
@in_viewer_time_zone
def approve(request, pk: int):
    access = _owner(request)
    asset = get_object_or_404(Asset, pk=pk)
    form = ApproveForm(request.POST, request.FILES, auto_id=_ids("approve", asset.pk))
    if not form.is_valid():
        return _render_approvals(request, failed={("approve", asset.pk): form}, status=422)
    permission = form.cleaned_data.get("permission")
    try:
        if permission is not None:
            # The same checks as evidence: an allowed type confirmed by its content, a size
            # limit, a safe name. It is stored privately and only ever downloaded.
            checked = inspect_upload(permission)
            permission.name = safe_name(checked.name)
        registry.approve(
            request.user, access, asset, reason=form.cleaned_data["reason"], permission=permission
        )
    except MamoriError as exc:
        field = "permission" if exc.field == "file" else exc.field
        form.add_error(field if field in form.fields else None, exc.message)
        return _render_approvals(
            request, failed={("approve", asset.pk): form}, status=status_of(exc)
        )
    messages.success(request, _("%(value)s was approved.") % {"value": asset})
    return redirect("earlywarning:approvals")


@login_required
@require_POST
@in_viewer_time_zone
def refuse(request, pk: int):
    access = _owner(request)
    asset = get_object_or_404(Asset, pk=pk)
    back_to_overlaps = request.POST.get("from") == "overlaps"
    form = RefuseForm(request.POST, auto_id=_ids("refuse", asset.pk))
    problem = None
    status = 422
    if form.is_valid():
        try:
            registry.refuse(request.user, access, asset, reason=form.cleaned_data["reason"])
        except MamoriError as exc:
            add_to_form(form, exc)
            status = status_of(exc)
        else:
            messages.success(request, _("%(value)s was refused.") % {"value": asset})
            return redirect(
                "earlywarning:overlaps" if back_to_overlaps else "earlywarning:approvals"
            )
    problem = form
    if back_to_overlaps:
        return _render_overlaps(request, failed={("refuse", asset.pk): problem}, status=status)
    return _render_approvals(request, failed={("refuse", asset.pk): problem}, status=status)


def _render_overlaps(request, *, failed: dict | None = None, status: int = 200):
    failed = failed or {}
    overlaps = list(queues.open_overlaps())
    for overlap in overlaps:
        overlap.settle_form = failed.get(("settle", overlap.pk)) or SettleForm(
            auto_id=_ids("settle", overlap.pk)
        )
        overlap.claims = [overlap.asset, overlap.other]
        for claim in overlap.claims:
            claim.refuse_form = failed.get(("refuse", claim.pk)) or RefuseForm(
                auto_id=_ids("refuse", claim.pk)
            )
    shown = {overlap.pk for overlap in overlaps}
    claims = {claim.pk for overlap in overlaps for claim in overlap.claims}
    problems = _unshown({k: v for k, v in failed.items() if k[0] == "settle"}, shown)
    problems += _unshown({k: v for k, v in failed.items() if k[0] == "refuse"}, claims)
    return render(
        request,
        "earlywarning/overlaps.html",
        {
            "overlaps": overlaps,
            "settled": list(queues.settled_overlaps()),
            "problems": problems,
        },
        status=status,
    )


@login_required
@in_viewer_time_zone
def overlaps(request):
    _owner(request)
    return _render_overlaps(request)


@login_required
@require_POST
@in_viewer_time_zone
def settle(request, pk: int):
    access = _owner(request)
    overlap = get_object_or_404(AssetOverlap, pk=pk)
    form = SettleForm(request.POST, auto_id=_ids("settle", overlap.pk))
    if not form.is_valid():
        return _render_overlaps(request, failed={("settle", overlap.pk): form}, status=422)
    try:
        registry.settle_overlap(
            request.user, access, overlap, settlement=form.cleaned_data["settlement"]
        )
    except MamoriError as exc:
        add_to_form(form, exc)
        return _render_overlaps(
            request, failed={("settle", overlap.pk): form}, status=status_of(exc)
        )
    messages.success(request, _("The overlap was settled."))
    return redirect("earlywarning:overlaps")


@login_required
def deadline_settings(request):
    access = _owner(request)
    form = DeadlinesForm(*_posted(request), current=deadlines.current())
    status = 200
    if request.method == "POST":
        if not form.is_valid():
            status = 422
        else:
            try:
                deadlines.set_acknowledge_hours(request.user, access, form.cleaned_data)
            except MamoriError as exc:
                add_to_form(form, exc)
                status = status_of(exc)
            else:
                messages.success(request, _("The deadlines were saved; new alerts follow them."))
                return redirect("earlywarning:deadlines")
    return render(request, "earlywarning/deadlines.html", {"form": form}, status=status)


# Stored days listed on the sector page, newest first.
SECTOR_DAYS_LISTED = 30


@login_required
@in_viewer_time_zone
def sector_figures(request):
    """The stored figures of a day (``?day=``, else the newest), the days stored, and (POST) a
    day computed now: today gives the figures so far, a past day is replayed from history."""
    if not permissions.can_read_sector(_access(request)):
        raise Http404
    today = sector.today()
    status = 200
    if request.method == "POST":
        form = SectorDayForm(request.POST, today=today)
        if form.is_valid():
            stored = sector.sample(form.cleaned_data["day"])
            messages.success(
                request, _("The figures of %(day)s were computed.") % {"day": stored.day}
            )
            return redirect(f"{reverse('earlywarning:sector')}?day={stored.day.isoformat()}")
        status = 422
        chosen = None
    elif "day" in request.GET:
        form = SectorDayForm(request.GET, today=today)
        if form.is_valid():
            chosen = SectorSample.objects.filter(day=form.cleaned_data["day"]).first()
        else:
            status = 422
            chosen = None
    else:
        form = SectorDayForm(initial={"day": today}, today=today)
        chosen = SectorSample.objects.first()
    days = list(SectorSample.objects.only("day", "digest", "computed_at")[:SECTOR_DAYS_LISTED])
    context = {
        "form": form,
        "chosen": chosen,
        "asked": form.cleaned_data.get("day") if form.is_bound and form.is_valid() else None,
        "days": days,
        "today": today,
        "min_group": sector.MIN_GROUP,
    }
    if chosen is not None:
        figures = chosen.figures
        groups = []
        for category, part in (figures.get("groups") or {}).items():
            try:
                name = Category(category).label
            except ValueError:
                name = category
            groups.append(
                {
                    "name": name,
                    "institutions": part.get("institutions"),
                    **display.sector_tables(part),
                }
            )
        context.update(
            {
                "figures": figures,
                "sector_tables": display.sector_tables(figures["sector"])
                if figures.get("sector")
                else None,
                "groups": groups,
                "partial": chosen.day >= today or chosen.computed_at < sector.bounds(chosen.day)[1],
            }
        )
    return render(request, "earlywarning/sector.html", context, status=status)
