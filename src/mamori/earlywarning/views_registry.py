"""The asset registry pages of an organisation: its claims and the form to add one, one claim
(a domain's TXT record and the "check now" button, withdrawal), CSV import and export, and a
starting list from the latest assessment's inventory.

Every change goes through ``earlywarning.registry`` (which checks the role and writes the audit
trail); refusals come back on the page with the reason, never as a server error.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from mamori.core.bodylimit import body_limit, upload_limit
from mamori.core.errors import MamoriError, add_to_form
from mamori.earlywarning import display, ownership, permissions, registry, suggestions
from mamori.earlywarning.forms import AssetForm, CsvImportForm, SuggestionsForm
from mamori.earlywarning.models import Alert, Asset, AssetKind
from mamori.earlywarning.views import (
    _access,
    _posted,
    in_viewer_time_zone,
    member_organisation,
    status_of,
)

# The domain-check partial (htmx swaps it in place) and the whole page share it.
DOMAIN_CHECK_TEMPLATE = "earlywarning/_domain_check.html"


def _editable_organisation(request, pk: int):
    """An organisation whose registry the viewer may change (its administrators and
    contributors); a form page for anyone else does not exist (404)."""
    organisation = member_organisation(request, pk)
    if not permissions.can_register(_access(request), organisation.pk):
        raise Http404
    return organisation


def _get_asset(request, pk: int) -> Asset:
    access = _access(request)
    asset = get_object_or_404(
        Asset.objects.visible_to(access).select_related("organisation", "decided_by"), pk=pk
    )
    if not permissions.can_view_asset(access, asset):
        raise Http404
    return asset


def record_name(asset: Asset) -> str:
    """Where a domain's TXT record goes (``_mamori.<domain>``)."""
    return ownership.txt_record_name(asset.value) if asset.kind == AssetKind.DOMAIN else ""


@login_required
@in_viewer_time_zone
def asset_list(request, organisation: int):
    """The registry and (POST) a new claim."""
    access = _access(request)
    organisation = member_organisation(request, organisation)
    form = AssetForm(*_posted(request))
    status = 200
    if request.method == "POST":
        if not permissions.can_register(access, organisation.pk):
            form.is_valid()
            form.add_error(
                None,
                _("Only the organisation's administrators and contributors register its assets."),
            )
            status = 403
        elif not form.is_valid():
            status = 422
        else:
            try:
                asset = registry.register(request.user, access, organisation, **form.cleaned_data)
            except MamoriError as exc:
                add_to_form(form, exc)
                status = status_of(exc)
            else:
                if asset.kind == AssetKind.DOMAIN:
                    messages.success(
                        request,
                        _("%(value)s is registered. Publish the TXT record below, then check it.")
                        % {"value": asset},
                    )
                    return redirect("earlywarning:asset", pk=asset.pk)
                messages.success(
                    request,
                    _("%(value)s is registered and waits for the scheme owner's approval.")
                    % {"value": asset},
                )
                return redirect("earlywarning:assets", organisation=organisation.pk)
    assets = Asset.objects.filter(organisation=organisation).order_by("state", "kind", "value")
    return render(
        request,
        "earlywarning/assets.html",
        {
            "organisation": organisation,
            "assets": assets,
            "form": form,
            "can_register": permissions.can_register(access, organisation.pk),
        },
        status=status,
    )


def render_asset(request, asset: Asset, *, check=None, status=200):
    access = _access(request)
    member = permissions.can_view_organisation(access, asset.organisation_id)
    open_alerts = (
        Alert.objects.visible_to(access).open().filter(asset=asset).count() if member else None
    )
    return render(
        request,
        "earlywarning/asset.html",
        {
            "asset": asset,
            "record_name": record_name(asset),
            "last_check": display.last_check_message(asset),
            "check": check,
            "member": member,
            "open_alerts": open_alerts,
            "can_check": asset.kind == AssetKind.DOMAIN
            and asset.state in registry.LIVE_STATES
            and permissions.can_check_domain(access, asset),
            "can_withdraw": asset.state in registry.LIVE_STATES
            and permissions.can_withdraw(access, asset),
            "can_download_permission": bool(asset.hoster_permission)
            and permissions.can_download_permission(access, asset),
        },
        status=status,
    )


@login_required
@in_viewer_time_zone
def asset_detail(request, pk: int):
    return render_asset(request, _get_asset(request, pk))


@login_required
@require_POST
@in_viewer_time_zone
def asset_check(request, pk: int):
    """Look up the domain's TXT record now. htmx swaps the verification box in place; without
    JavaScript the page comes back with the result."""
    access = _access(request)
    asset = _get_asset(request, pk)
    status = 200
    problem = ""
    result = None
    try:
        result = registry.check_domain(request.user, access, asset)
    except MamoriError as exc:
        problem = str(exc.message)
        status = status_of(exc)
    asset.refresh_from_db()
    context = {
        "asset": asset,
        "record_name": record_name(asset),
        "last_check": display.last_check_message(asset),
        "check": {"result": result, "problem": problem},
        "can_check": asset.kind == AssetKind.DOMAIN
        and asset.state in registry.LIVE_STATES
        and permissions.can_check_domain(access, asset),
    }
    if request.htmx:
        return render(request, DOMAIN_CHECK_TEMPLATE, context, status=status)
    if problem:
        messages.error(request, problem)
    elif result is not None and result.found:
        messages.success(request, _("The TXT record was found: the domain is verified."))
    else:
        messages.error(request, str(result.reason) if result else _("The check failed."))
    return redirect("earlywarning:asset", pk=asset.pk)


@login_required
@require_POST
def asset_withdraw(request, pk: int):
    access = _access(request)
    asset = _get_asset(request, pk)
    try:
        registry.withdraw(request.user, access, asset)
    except MamoriError as exc:
        messages.error(request, exc.message)
        return redirect("earlywarning:asset", pk=asset.pk)
    messages.success(
        request, _("%(value)s was withdrawn; it raises no more alerts.") % {"value": asset}
    )
    return redirect("earlywarning:assets", organisation=asset.organisation_id)


@login_required
def asset_permission(request, pk: int):
    """The hoster's permission kept with an approval: always a download, never shown in the
    browser (it is whatever file was uploaded)."""
    asset = _get_asset(request, pk)
    if not asset.hoster_permission or not permissions.can_download_permission(
        _access(request), asset
    ):
        raise Http404
    name = asset.hoster_permission.name.rsplit("/", 1)[-1]
    response = FileResponse(
        asset.hoster_permission.open("rb"),
        as_attachment=True,
        filename=name,
        content_type="application/octet-stream",
    )
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response["Cache-Control"] = "private, no-store"
    return response


@body_limit(upload_limit(lambda: registry.CSV_MAX_BYTES))
@login_required
def assets_import(request, organisation: int):
    """Upload a registry CSV: every row registered, or none, with every error by line."""
    access = _access(request)
    organisation = _editable_organisation(request, organisation)
    form = CsvImportForm(*_posted(request, files=True))
    errors: list[str] = []
    status = 200
    if request.method == "POST":
        if not form.is_valid():
            status = 422
        else:
            upload = form.cleaned_data["file"]
            source = (upload.name or "upload.csv").rsplit("/", 1)[-1][:100]
            try:
                if upload.size > registry.CSV_MAX_BYTES:
                    # Refused unread, in the words the registry uses for a file too large.
                    raise MamoriError(
                        _("%(source)s: the file is larger than %(size)s MB.")
                        % {"source": source, "size": registry.CSV_MAX_BYTES // 2**20},
                        field="file",
                    )
                result = registry.import_csv(
                    request.user, access, organisation, upload.read(), source=source
                )
            except MamoriError as exc:
                add_to_form(form, exc)
                status = status_of(exc)
            else:
                if result.errors:
                    errors = result.errors
                    status = 422
                else:
                    messages.success(
                        request,
                        _("%(count)s claims were registered.") % {"count": len(result.created)},
                    )
                    return redirect("earlywarning:assets", organisation=organisation.pk)
    return render(
        request,
        "earlywarning/import.html",
        {
            "organisation": organisation,
            "form": form,
            "errors": errors,
            "columns": ",".join(registry.CSV_COLUMNS),
        },
        status=status,
    )


@login_required
def assets_export(request, organisation: int):
    organisation = member_organisation(request, organisation)
    assets = Asset.objects.filter(organisation=organisation).order_by("kind", "value")
    response = HttpResponse(registry.export_csv(assets), content_type="text/csv; charset=utf-8")
    day = timezone.localdate().isoformat()
    response["Content-Disposition"] = (
        f'attachment; filename="mamori-assets-{organisation.pk}-{day}.csv"'
    )
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
def assets_from_assessment(request, organisation: int):
    """The values of the latest assessment's inventory that parse as claims, ticked; the user
    confirms and they are registered (all of them, or none with the reasons)."""
    access = _access(request)
    organisation = _editable_organisation(request, organisation)
    found = suggestions.from_latest_assessment(organisation)
    form = SuggestionsForm(*_posted(request), offered=[item.key for item in found.new])
    errors: list[str] = []
    status = 200
    if request.method == "POST":
        if not form.is_valid():
            status = 422
        else:
            created, errors = suggestions.register_chosen(
                request.user, access, organisation, found.chosen(form.cleaned_data["choice"])
            )
            if errors:
                status = 422
            else:
                messages.success(
                    request,
                    _("%(count)s claims were registered from the assessment.")
                    % {"count": len(created)},
                )
                return redirect("earlywarning:assets", organisation=organisation.pk)
    ticked = set(request.POST.getlist("choice")) if request.method == "POST" else None
    return render(
        request,
        "earlywarning/from_assessment.html",
        {
            "organisation": organisation,
            "found": found,
            "form": form,
            "errors": errors,
            "ticked": ticked,
        },
        status=status,
    )
