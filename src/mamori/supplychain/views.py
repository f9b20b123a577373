"""Pages of the supplier survey: the owner's (services, campaigns, chain by tier, export) and the
respondent's (invitation link, questionnaire, own answers, inviting its suppliers, claiming an
organisation), and the owner's notes of hearings with a supplier. Views translate HTTP to
service calls; outsiders get 404."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from mamori.core.bodylimit import body_limit, upload_limit
from mamori.core.errors import MamoriError, add_to_form
from mamori.organisations.access import Access
from mamori.organisations.models import Organisation
from mamori.supplychain import permissions, services
from mamori.supplychain.forms import (
    AnswerForm,
    BindForm,
    CampaignForm,
    ClaimForm,
    HearingForm,
    InviteForm,
    NeedFormSet,
    ServiceForm,
    SiteFormSet,
)
from mamori.supplychain.models import (
    Campaign,
    CriticalService,
    Invitation,
    InvitationStatus,
    NodeKind,
    TierOrigin,
)


def _access(request) -> Access:
    return Access.for_request(request)


def _status(exc: MamoriError) -> int:
    return 422 if exc.status == 400 else exc.status


def _site_url(request) -> str:
    return request.build_absolute_uri("/")


def _get_campaign(request, pk: int) -> Campaign:
    return get_object_or_404(
        Campaign.objects.visible_to(_access(request)).select_related("owner"), pk=pk
    )


def _get_response(request, pk: int, *, edit: bool = False) -> Invitation:
    invitation = get_object_or_404(
        Invitation.objects.select_related(
            "campaign__owner",
            "node__entity__ultimate_parent",
            "organisation",
            "parent__organisation",
        ),
        pk=pk,
    )
    access = _access(request)
    allowed = (
        permissions.can_edit_response(access, request.session, invitation)
        if edit
        else permissions.can_view_response(access, request.session, invitation)
    )
    if not allowed:
        raise Http404
    return invitation


def _invalid_link(request):
    """One page for unknown, tampered, expired and already-used links: it says nothing about
    who sent it or who else is in the chain."""
    return render(request, "supplychain/invalid_link.html", status=404)


# --- The owner's side -------------------------------------------------------------------------


@login_required
def index(request):
    access = _access(request)
    campaigns = Campaign.objects.visible_to(access).select_related("owner")
    responses = (
        Invitation.objects.filter(organisation_id__in=access.organisation_ids)
        .select_related("campaign__owner", "node", "parent__organisation", "organisation")
        .order_by("-created_at")
    )
    organisations = Organisation.objects.filter(pk__in=access.organisation_ids)
    return render(
        request,
        "supplychain/index.html",
        {
            "campaigns": campaigns,
            "responses": responses,
            "can_create": bool(permissions.campaign_organisations(access, organisations)),
            "can_view_sector": permissions.can_view_sector(access),
        },
    )


def _manageable(access):
    organisations = Organisation.objects.filter(pk__in=access.organisation_ids)
    return permissions.campaign_organisations(access, organisations)


@login_required
def service_list(request):
    access = _access(request)
    organisations = _manageable(access)
    if not organisations:
        raise Http404
    form = ServiceForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            organisation = organisations[0]
            wanted = request.POST.get("organisation")
            for candidate in organisations:
                if str(candidate.pk) == wanted:
                    organisation = candidate
            data = dict(form.cleaned_data)
            try:
                services.create_service(request.user, access, organisation, **data)
            except MamoriError as exc:
                form.add_error(None, exc.message)
                status = _status(exc)
            else:
                messages.success(request, _("The critical service was added."))
                return redirect("supplychain:services")
        else:
            status = 422
    rows = CriticalService.objects.filter(owner__in=organisations).select_related("owner")
    return render(
        request,
        "supplychain/services.html",
        {"form": form, "services": rows, "organisations": organisations},
        status=status,
    )


@login_required
def campaign_create(request):
    access = _access(request)
    organisations = _manageable(access)
    if not organisations:
        raise Http404
    service_rows = CriticalService.objects.filter(owner__in=organisations).select_related("owner")
    form = CampaignForm(request.POST or None, organisations=organisations, services=service_rows)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                campaign = services.create_campaign(
                    request.user,
                    access,
                    form.cleaned_data["organisation"],
                    title=form.cleaned_data["title"],
                    services=form.cleaned_data["services"],
                    deadline=form.cleaned_data["deadline"],
                    site_url=_site_url(request),
                )
            except MamoriError as exc:
                add_to_form(form, exc)
                status = _status(exc)
            else:
                messages.success(request, _("The survey was created. Invite the Tier-1 suppliers."))
                return redirect("supplychain:campaign", pk=campaign.pk)
        else:
            status = 422
    return render(
        request,
        "supplychain/campaign_form.html",
        {"form": form, "has_services": service_rows.exists()},
        status=status,
    )


@login_required
def campaign_detail(request, pk: int):
    campaign = _get_campaign(request, pk)
    access = _access(request)
    can_manage = permissions.can_manage_campaign(access, campaign)
    service_rows = list(campaign.services.all())
    form = InviteForm(request.POST or None, targets=service_rows)
    status = 200
    if request.method == "POST":
        if not can_manage:
            raise Http404
        if form.is_valid():
            try:
                services.invite(
                    request.user,
                    access,
                    campaign=campaign,
                    for_node=form.cleaned_data["target"],
                    need=form.cleaned_data["need"],
                    supplier_name=form.cleaned_data["supplier_name"],
                    country=form.cleaned_data["country"],
                    email=form.cleaned_data["email"],
                    site_url=_site_url(request),
                )
            except MamoriError as exc:
                form.add_error(None, exc.message)
                status = _status(exc)
            else:
                messages.success(request, _("The invitation was sent."))
                return redirect("supplychain:campaign", pk=campaign.pk)
        else:
            status = 422
    return render(
        request,
        "supplychain/campaign_detail.html",
        {
            "campaign": campaign,
            "services": service_rows,
            "tracking": services.tracking(campaign.invitations.all()),
            "counts_from_manufacturers": any(
                service.tier_origin == TierOrigin.MANUFACTURER for service in service_rows
            ),
            "chain": services.chain_of(campaign),
            "form": form,
            "can_manage": can_manage,
        },
        status=status,
    )


@login_required
def campaign_export(request, pk: int):
    campaign = _get_campaign(request, pk)
    response = JsonResponse(
        services.export_graph(campaign), json_dumps_params={"ensure_ascii": False, "indent": 1}
    )
    response["Content-Disposition"] = f'attachment; filename="supplygraph-{campaign.pk}.json"'
    return response


@login_required
def sector(request):
    if not permissions.can_view_sector(_access(request)):
        raise Http404
    return render(request, "supplychain/sector.html", {"sector": services.sector_tracking()})


# --- The respondent's side --------------------------------------------------------------------


@never_cache
def landing(request, token: str):
    invitation = services.resolve_token(token)
    if invitation is None:
        return _invalid_link(request)
    access = _access(request)
    if invitation.organisation_id is not None:
        # Bound: the link works only for the organisation that answers it.
        if permissions.is_respondent(access, invitation):
            return redirect("supplychain:response", pk=invitation.pk)
        if not request.user.is_authenticated:
            return render(request, "supplychain/bound_link.html", status=403)
        return _invalid_link(request)
    if invitation.status == InvitationStatus.DECLINED:
        return _invalid_link(request)
    permissions.remember_link(request.session, invitation)
    link_key = _adopt_answer_key(request)
    organisations = [
        o
        for o in Organisation.objects.filter(pk__in=access.organisation_ids)
        if permissions.can_answer_for(access, o) and o.pk != invitation.campaign.owner_id
    ]
    form = BindForm(request.POST or None, organisations=organisations)
    if request.method == "POST" and request.user.is_authenticated and form.is_valid():
        try:
            services.bind(
                request.user,
                access,
                invitation,
                form.cleaned_data["organisation"],
                link_key=link_key,
            )
        except MamoriError as exc:
            form.add_error(None, exc.message)
        else:
            return redirect("supplychain:answer", pk=invitation.pk)
    response = render(
        request,
        "supplychain/landing.html",
        {
            "invitation": invitation,
            "form": form,
            "organisations": organisations,
            "answered_elsewhere": not permissions.holds_pen(request.session, invitation),
        },
    )
    _keep_answer_key(response, link_key)
    return response


# The browser's key for the answers it gives through a link lives in the session, which ends
# after an idle hour, and in a cookie kept as long as a link lives: opening the link again in
# the same browser, days later, gives the pen back to whoever holds it (and to nobody else).
ANSWER_COOKIE = "mamori_answer_key"


def _adopt_answer_key(request) -> str:
    remembered = request.COOKIES.get(ANSWER_COOKIE, "")
    if 20 <= len(remembered) <= 100 and remembered.replace("-", "").replace("_", "").isalnum():
        request.session[permissions.ANSWER_KEY] = remembered
    return permissions.answer_key(request.session)


def _keep_answer_key(response, key: str) -> None:
    response.set_cookie(
        ANSWER_COOKIE,
        key,
        max_age=int(services.INVITATION_TTL.total_seconds()),
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )


def _render_response(request, invitation: Invitation, *, hearing_form=None, status: int = 200):
    access = _access(request)
    node = invitation.node
    needs = node.needs.prefetch_related("provisions__provider__invitation")
    is_respondent = permissions.is_respondent(access, invitation) or permissions.holds_link(
        request.session, invitation
    )
    # Hearing notes are the survey owner's: the supplier's own view never lists them.
    can_read_hearings = permissions.can_read_hearings(access, invitation.campaign)
    can_record_hearing = permissions.can_record_hearing(access, invitation.campaign)
    if can_record_hearing and hearing_form is None:
        hearing_form = HearingForm(
            initial={
                "held_on": timezone.localdate(),
                "interviewer": request.user.display_name or request.user.get_username(),
            }
        )
    return render(
        request,
        "supplychain/response.html",
        {
            "invitation": invitation,
            "node": node,
            "entity": node.entity,
            "sites": node.sites.all(),
            "needs": needs,
            "can_edit": permissions.can_edit_response(access, request.session, invitation),
            "can_invite": permissions.can_invite_from(access, invitation),
            "can_claim": permissions.can_claim(request.user, request.session, invitation),
            "can_confirm_identity": invitation.organisation_id is not None
            and permissions.can_confirm_identity(access, invitation.organisation),
            "answered_elsewhere": invitation.organisation_id is None
            and not permissions.holds_pen(request.session, invitation),
            "is_respondent": is_respondent,
            "sent": invitation.children.select_related("node") if is_respondent else [],
            "hearings": invitation.hearing_notes.select_related("recorded_by")
            if can_read_hearings
            else None,
            "hearing_form": hearing_form if can_record_hearing else None,
        },
        status=status,
    )


@never_cache
def response_detail(request, pk: int):
    return _render_response(request, _get_response(request, pk))


@login_required
@require_POST
def record_hearing(request, pk: int):
    """Record the notes of a hearing with this supplier (the survey owner's administrators)."""
    invitation = _get_response(request, pk)
    access = _access(request)
    if not permissions.can_record_hearing(access, invitation.campaign):
        raise Http404
    form = HearingForm(request.POST)
    if form.is_valid():
        try:
            services.record_hearing(request.user, access, invitation, **form.cleaned_data)
        except MamoriError as exc:
            add_to_form(form, exc)
            return _render_response(request, invitation, hearing_form=form, status=_status(exc))
        messages.success(request, _("The hearing notes were recorded."))
        return redirect(f"{reverse('supplychain:response', args=[invitation.pk])}#hearings")
    return _render_response(request, invitation, hearing_form=form, status=422)


def _answer_initial(invitation: Invitation):
    node, entity = invitation.node, invitation.node.entity
    answered = invitation.status == InvitationStatus.ANSWERED
    initial = {
        "kind": node.kind,
        "name_ja": node.name_ja if answered else "",
        "name_en": node.name_en if answered else "",
        "country": node.country,
        "corporate_number": entity.corporate_number,
        "lei": entity.lei,
        "parent_name": entity.ultimate_parent.name_ja if entity.ultimate_parent_id else "",
        "has_bcp": {True: "yes", False: "no"}.get(node.has_bcp, ""),
        "recovery_hours": node.recovery_hours,
        "inventory_days": node.inventory_days,
        "certification_declared": node.certification_declared,
        "certification_text": node.certification_text,
        "disclosure": node.disclosure if answered else "full",
        "has_file": bool(node.certification_file),
    }
    sites = [{"kind": s.kind, "name": s.name, "country": s.country} for s in node.sites.all()]
    needs = [
        {
            "name": need.name,
            "providers": "\n".join(
                p.provider.name_ja or p.provider.name_en
                for p in need.provisions.all()
                if not hasattr(p.provider, "invitation")
            ),
        }
        for need in node.needs.prefetch_related("provisions__provider__invitation")
    ]
    return initial, sites, needs


@body_limit(upload_limit(lambda: settings.EVIDENCE_MAX_BYTES))
@never_cache
def answer(request, pk: int):
    invitation = _get_response(request, pk, edit=True)
    initial, site_initial, need_initial = _answer_initial(invitation)
    if request.method == "POST":
        form = AnswerForm(request.POST, request.FILES, initial=initial)
        site_set = SiteFormSet(request.POST, prefix="sites")
        need_set = NeedFormSet(request.POST, prefix="needs")
    else:
        form = AnswerForm(initial=initial)
        site_set = SiteFormSet(initial=site_initial, prefix="sites")
        need_set = NeedFormSet(initial=need_initial, prefix="needs")
    status = 200
    if request.method == "POST":
        if form.is_valid() and site_set.is_valid() and need_set.is_valid():
            answers = dict(form.cleaned_data)
            if answers["kind"] not in (NodeKind.ICT, NodeKind.PART):
                raise Http404
            answers["country_of_entity"] = answers["country"]
            sites = [
                services.SiteRow(
                    f.cleaned_data["kind"], f.cleaned_data["name"], f.cleaned_data["country"]
                )
                for f in site_set
                if f.cleaned_data.get("country")
            ]
            needs = [
                services.NeedRow(f.cleaned_data["name"], f.provider_names())
                for f in need_set
                if f.cleaned_data.get("name", "").strip()
            ]
            try:
                services.save_answers(
                    request.user if request.user.is_authenticated else None,
                    invitation,
                    answers=answers,
                    sites=sites,
                    needs=needs,
                    link_key=permissions.answer_key(request.session),
                )
            except MamoriError as exc:
                add_to_form(form, exc)
                status = _status(exc)
            else:
                messages.success(request, _("Your answers were saved."))
                return redirect("supplychain:response", pk=invitation.pk)
        else:
            status = 422
    return render(
        request,
        "supplychain/answer.html",
        {"invitation": invitation, "form": form, "site_set": site_set, "need_set": need_set},
        status=status,
    )


@login_required
def invite_suppliers(request, pk: int):
    invitation = _get_response(request, pk)
    access = _access(request)
    if not permissions.can_invite_from(access, invitation):
        raise Http404
    form = InviteForm(request.POST or None, targets=[invitation.node])
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.invite(
                    request.user,
                    access,
                    campaign=invitation.campaign,
                    for_node=invitation.node,
                    need=form.cleaned_data["need"],
                    supplier_name=form.cleaned_data["supplier_name"],
                    country=form.cleaned_data["country"],
                    email=form.cleaned_data["email"],
                    parent=invitation,
                    site_url=_site_url(request),
                )
            except MamoriError as exc:
                form.add_error(None, exc.message)
                status = _status(exc)
            else:
                messages.success(request, _("The invitation was sent."))
                return redirect("supplychain:response", pk=invitation.pk)
        else:
            status = 422
    return render(
        request,
        "supplychain/invite.html",
        {"invitation": invitation, "form": form, "needs": invitation.node.needs.all()},
        status=status,
    )


@require_POST
def decline(request, pk: int):
    invitation = _get_response(request, pk, edit=True)
    try:
        services.decline(
            request.user if request.user.is_authenticated else None,
            invitation,
            link_key=permissions.answer_key(request.session),
        )
    except MamoriError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("You declined the invitation."))
    return redirect("supplychain:response", pk=invitation.pk)


@never_cache
def claim(request, pk: int):
    invitation = _get_response(request, pk)
    if not permissions.can_claim(request.user, request.session, invitation):
        raise Http404
    form = ClaimForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                user = services.claim_organisation(
                    invitation,
                    name_ja=data["name_ja"],
                    name_en=data["name_en"],
                    corporate_number=data["corporate_number"].strip(),
                    country=data["country"],
                    username=data["username"],
                    email=data["email"],
                    password=data["password"],
                    link_key=permissions.answer_key(request.session),
                )
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    for error in errors:
                        form.add_error(field if field in form.fields else None, error)
                status = 422
            except MamoriError as exc:
                form.add_error(None, exc.message)
                status = _status(exc)
            else:
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
                messages.success(request, _("Your organisation was created and you are signed in."))
                return redirect("supplychain:response", pk=invitation.pk)
        else:
            status = 422
    return render(
        request, "supplychain/claim.html", {"invitation": invitation, "form": form}, status=status
    )


@login_required
@require_POST
def confirm_identity(request, pk: int):
    """Confirm an organisation registered through a survey link (the scheme owner, or an
    administrator of the organisation that invited it). Others learn nothing: 404."""
    access = _access(request)
    organisation = get_object_or_404(Organisation, pk=pk)
    if not permissions.can_confirm_identity(access, organisation):
        raise Http404
    try:
        services.confirm_identity(request.user, access, organisation.pk)
    except MamoriError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            _("%(organisation)s is confirmed; its invitations to its suppliers are sent.")
            % {"organisation": organisation.name},
        )
    target = url_has_allowed_host_and_scheme(
        request.POST.get("next", ""), allowed_hosts={request.get_host()}
    )
    return redirect(request.POST["next"] if target else "supplychain:index")
