"""Board reporting pages: an organisation's packs, its cyber-risk owner and where it stands
among its peers; a pack with its summary, files and signature. Views translate HTTP to the
services and back; an organisation or pack the viewer may not see is a 404."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from mamori.organisations.access import Access
from mamori.organisations.models import Membership, Organisation, Role
from mamori.reporting import benchmark, display, pack, permissions, services
from mamori.reporting.forms import OwnerForm, PackPeriodForm, SignForm
from mamori.reporting.models import BoardPack

FILE_KINDS = {"pdf": "application/pdf", "xlsx": display.XLSX_TYPE}


def _organisation(request, pk: int) -> tuple[Access, Organisation]:
    access = Access.for_request(request)
    if pk not in permissions.reporting_organisation_ids(access):
        raise Http404
    return access, get_object_or_404(Organisation, pk=pk)


def _board_members(organisation: Organisation):
    return [
        membership.user
        for membership in Membership.objects.filter(
            organisation=organisation, role=Role.BOARD_SIGNATORY, user__is_active=True
        )
        .select_related("user")
        .order_by("user__username")
    ]


@login_required
def index(request):
    access = Access.for_request(request)
    organisations = Organisation.objects.filter(
        pk__in=permissions.reporting_organisation_ids(access)
    ).order_by("name_ja")
    if len(organisations) == 1 and not permissions.can_read_sector(access):
        return redirect("reporting:organisation", organisations[0].pk)
    return render(
        request,
        "reporting/index.html",
        {"organisations": organisations, "sector": permissions.can_read_sector(access)},
    )


def _render_organisation(request, access, organisation, *, period_form=None, owner_form=None):
    reads_packs = permissions.can_read_packs(access, organisation.pk)
    names_owner = permissions.can_name_owner(access, organisation.pk)
    last_quarter = pack.last_finished_quarter(display.today())
    status = (
        422 if (period_form and period_form.errors) or (owner_form and owner_form.errors) else 200
    )
    return render(
        request,
        "reporting/organisation.html",
        {
            "organisation": organisation,
            "reads_packs": reads_packs,
            "packs": display.with_tiles(
                BoardPack.objects.filter(organisation=organisation).order_by(
                    "-period_to", "-period_from", "-version"
                )[:40]
                if reads_packs
                else [],
                get_language(),
            ),
            "owner": services.owner_of(organisation.pk),
            "names_owner": names_owner,
            "owner_form": owner_form
            or (OwnerForm(board_members=_board_members(organisation)) if names_owner else None),
            "period_form": period_form
            or PackPeriodForm(
                initial={"period_from": last_quarter.first, "period_to": last_quarter.last}
            ),
            "peers": (
                benchmark.positions_for(organisation)
                if permissions.can_see_peers(access, organisation.pk)
                else None
            ),
        },
        status=status,
    )


@login_required
def organisation_page(request, pk: int):
    access, organisation = _organisation(request, pk)
    return _render_organisation(request, access, organisation)


@login_required
@require_POST
def make(request, pk: int):
    access, organisation = _organisation(request, pk)
    if not permissions.can_read_packs(access, organisation.pk):
        raise Http404
    form = PackPeriodForm(request.POST)
    if form.is_valid():
        period = pack.Period(form.cleaned_data["period_from"], form.cleaned_data["period_to"])
        try:
            made = services.make_pack(request.user, organisation, period)
        except services.ReportingError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _("The pack is ready. Its PDF and XLSX follow in a moment."))
            return redirect("reporting:pack", made.pk)
    return _render_organisation(request, access, organisation, period_form=form)


@login_required
@require_POST
def name_owner(request, pk: int):
    access, organisation = _organisation(request, pk)
    if not permissions.can_name_owner(access, organisation.pk):
        raise Http404
    form = OwnerForm(request.POST, board_members=_board_members(organisation))
    if form.is_valid():
        try:
            services.name_owner(request.user, access, organisation, form.cleaned_data["user"])
        except services.ReportingError as error:
            form.add_error("user", str(error))
        else:
            messages.success(request, _("The cyber-risk owner is named."))
            return redirect("reporting:organisation", organisation.pk)
    return _render_organisation(request, access, organisation, owner_form=form)


def _pack(request, pk: int) -> tuple[Access, BoardPack]:
    access = Access.for_request(request)
    found = (
        BoardPack.objects.visible_to(access).select_related("organisation").filter(pk=pk).first()
    )
    if found is None:
        raise Http404
    return access, found


def _render_pack(request, access, board_pack, *, sign_form=None, status=200):
    owner = services.owner_of(board_pack.organisation_id)
    may_sign = not board_pack.signed and owner is not None and owner.user_id == request.user.pk
    return render(
        request,
        "reporting/pack.html",
        {
            "pack": board_pack,
            "summary": display.pack_summary(board_pack.content, get_language()),
            "owner": owner,
            "may_sign": may_sign,
            "sign_form": sign_form or (SignForm() if may_sign else None),
        },
        status=status,
    )


@login_required
def pack_page(request, pk: int):
    access, board_pack = _pack(request, pk)
    return _render_pack(request, access, board_pack)


@login_required
@require_POST
def sign(request, pk: int):
    access, board_pack = _pack(request, pk)
    form = SignForm(request.POST)
    if form.is_valid():
        try:
            services.sign_pack(
                request.user,
                access,
                board_pack.pk,
                meeting_date=form.cleaned_data["meeting_date"],
                minutes_reference=form.cleaned_data["minutes_reference"],
                comment=form.cleaned_data["comment"],
                code=form.cleaned_data["code"],
            )
        except services.ReportingError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _("The pack is signed. The board's review is on record."))
            return redirect("reporting:pack", board_pack.pk)
    return _render_pack(request, access, board_pack, sign_form=form, status=422)


@login_required
def pack_file(request, pk: int, kind: str, language: str):
    _access, board_pack = _pack(request, pk)
    if kind not in FILE_KINDS or language not in ("ja", "en"):
        raise Http404
    stored = board_pack.file_for(kind, language)
    if not stored:
        messages.info(request, _("The files are still being prepared; try again in a moment."))
        return redirect("reporting:pack", board_pack.pk)
    return FileResponse(
        stored.open("rb"),
        as_attachment=True,
        filename=display.file_name(board_pack, kind, language),
        content_type=FILE_KINDS[kind],
    )
