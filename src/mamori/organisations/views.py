from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import formats, timezone
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST, require_safe

from mamori.assessments.models import Assessment
from mamori.certificates.models import Certificate
from mamori.core.errors import MamoriError, add_to_form
from mamori.organisations import permissions, services
from mamori.organisations.access import Access
from mamori.organisations.forms import InviteMemberForm, NewUserForm, OrganisationForm
from mamori.organisations.models import (
    Category,
    MembershipInvitation,
    Organisation,
    WorkingGroup,
)


@login_required
def organisation_list(request):
    access = Access.for_request(request)
    # NUL characters are dropped: nobody searches for one and PostgreSQL refuses them.
    query = (request.GET.get("q") or "").replace("\x00", "").strip()[:100]
    category = request.GET.get("category", "")
    organisations = Organisation.objects.visible_to(access)
    if query:
        organisations = organisations.filter(
            Q(name_ja__icontains=query) | Q(name_en__icontains=query) | Q(corporate_number=query)
        )
    if category in Category.values:
        organisations = organisations.filter(category=category)
    unverified = request.GET.get("identity") == "unverified"
    if unverified:
        organisations = organisations.filter(identity_verified=False)
    page = Paginator(organisations.order_by("category", "name_ja"), 50).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "organisations/list.html",
        {
            "page": page,
            "query": query,
            "category": category,
            "categories": Category.choices,
            "unverified": unverified,
            "working_groups": WorkingGroup.objects.visible_to(access),
        },
    )


@login_required
def detail(request, pk: int):
    access = Access.for_request(request)
    organisation = get_object_or_404(Organisation.objects.visible_to(access), pk=pk)
    return render(
        request,
        "organisations/detail.html",
        {
            "organisation": organisation,
            "members": organisation.memberships.select_related("user").order_by("role")
            if organisation.pk in access.organisation_ids
            else None,
            "can_view_members": permissions.can_view_members(access, organisation),
            "can_manage_members": permissions.can_manage_members(access, organisation),
            "assessments": Assessment.objects.visible_to(access)
            .filter(organisation=organisation)
            .select_related("catalogue")[:20],
            "certificates": Certificate.objects.visible_to(access).filter(
                organisation=organisation
            )[:20],
            "working_groups": WorkingGroup.objects.visible_to(access)
            .filter(Q(members=organisation) | Q(convenor=organisation))
            .distinct(),
            # For whoever confirms an organisation registered through a link.
            "resembling": Organisation.objects.filter(pk__in=organisation.resembles or [])
            if not organisation.identity_verified
            else [],
        },
    )


@login_required
@require_safe
def working_group(request, pk: int):
    """The roster: the convenor, then the members by category. Organisations the user may not
    open are named without a link."""
    access = Access.for_request(request)
    group = get_object_or_404(
        WorkingGroup.objects.visible_to(access).select_related("convenor"), pk=pk
    )
    members = list(group.members.order_by("name_ja", "pk"))
    openable = set(
        Organisation.objects.visible_to(access)
        .filter(pk__in=[m.pk for m in members] + ([group.convenor_id] if group.convenor_id else []))
        .values_list("pk", flat=True)
    )
    by_category = [
        {"label": label, "organisations": rows}
        for value, label in Category.choices
        if (rows := [m for m in members if m.category == value])
    ]
    return render(
        request,
        "organisations/working_group.html",
        {
            "group": group,
            "count": len(members),
            "by_category": by_category,
            "openable": openable,
        },
    )


# --- People -------------------------------------------------------------------------------------


def _members_organisation(request, pk: int) -> Organisation:
    """The organisation if the user may see its member list; 404 otherwise, so those outside it
    learn nothing about who works there."""
    access = Access.for_request(request)
    organisation = get_object_or_404(Organisation.objects.visible_to(access), pk=pk)
    if not permissions.can_view_members(access, organisation):
        raise Http404
    return organisation


def _require_manager(request, organisation: Organisation) -> None:
    """Those who may see the list but not change it get 403: the organisation is no secret
    to them."""
    if not permissions.can_manage_members(Access.for_request(request), organisation):
        raise PermissionDenied


def _render_members(
    request,
    organisation: Organisation,
    *,
    invite_form=None,
    new_form=None,
    created=None,
    status: int = 200,
):
    access = Access.for_request(request)
    roles = permissions.offered_roles(access, organisation)
    memberships = list(
        organisation.memberships.select_related("user").order_by("role", "user__username", "pk")
    )
    for membership in memberships:
        membership.organisation = organisation
        membership.removable = permissions.can_remove(access, membership)
    can_manage = permissions.can_manage_members(access, organisation)
    # Every invitation alike, whether its user name exists or not: the list says who was
    # invited, never who could accept (services.invite_member).
    invitations = (
        list(
            MembershipInvitation.objects.open()
            .filter(organisation=organisation)
            .select_related("invited_by")
            .order_by("expires_at", "pk")
        )
        if can_manage
        else []
    )
    for invitation in invitations:
        invitation.cancellable = permissions.can_grant(access, organisation, invitation.role)
    response = render(
        request,
        "organisations/members.html",
        {
            "organisation": organisation,
            "memberships": memberships,
            "invitations": invitations,
            "can_manage": can_manage,
            "invite_form": invite_form or InviteMemberForm(roles=roles, auto_id="id_invite_%s"),
            "new_form": new_form or NewUserForm(roles=roles, auto_id="id_new_%s"),
            "created": created,
        },
        status=status,
    )
    if created:
        # The initial password is in this response only: no cache may keep a copy.
        add_never_cache_headers(response)
    return response


@login_required
@require_safe
def members(request, pk: int):
    organisation = _members_organisation(request, pk)
    return _render_members(request, organisation)


@login_required
@require_POST
def add_member(request, pk: int):
    """Invite someone who has an account (``mode=existing``: they join when they accept) or
    create an account for a new person (``mode=new``: a member at once)."""
    access = Access.for_request(request)
    organisation = _members_organisation(request, pk)
    _require_manager(request, organisation)
    roles = permissions.offered_roles(access, organisation)
    creating = request.POST.get("mode") == "new"
    if creating:
        form = NewUserForm(request.POST, roles=roles, auto_id="id_new_%s")
    else:
        form = InviteMemberForm(request.POST, roles=roles, auto_id="id_invite_%s")
    status = 422
    if form.is_valid():
        data = form.cleaned_data
        try:
            if creating:
                membership, password = services.create_user_and_add(
                    request.user,
                    access,
                    organisation.pk,
                    username=data["username"],
                    display_name=data["display_name"],
                    email=data["email"],
                    language=data["language"],
                    role=data["role"],
                )
            else:
                invitation = services.invite_member(
                    request.user, access, organisation.pk, data["username"], data["role"]
                )
        except MamoriError as exc:
            add_to_form(form, exc)
            status = 422 if exc.status == 400 else exc.status
        else:
            if creating:
                return _render_members(
                    request,
                    organisation,
                    created={"user": membership.user, "password": password},
                )
            # The same words whether the user name exists or not.
            messages.success(
                request,
                _(
                    "%(user)s is invited as %(role)s. They join when they accept the invitation "
                    "after signing in, by %(date)s."
                )
                % {
                    "user": invitation.username,
                    "role": invitation.get_role_display(),
                    "date": formats.date_format(timezone.localtime(invitation.expires_at)),
                },
            )
            return redirect("organisations:members", pk=organisation.pk)
    if creating:
        return _render_members(request, organisation, new_form=form, status=status)
    return _render_members(request, organisation, invite_form=form, status=status)


@login_required
@require_POST
def cancel_invitation(request, pk: int, invitation_id: int):
    access = Access.for_request(request)
    organisation = _members_organisation(request, pk)
    _require_manager(request, organisation)
    invitation = get_object_or_404(
        MembershipInvitation.objects.filter(organisation=organisation), pk=invitation_id
    )
    if not permissions.can_grant(access, organisation, invitation.role):
        raise PermissionDenied
    try:
        services.cancel_invitation(request.user, access, organisation.pk, invitation.pk)
    except MamoriError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request,
            _("The invitation to %(user)s was withdrawn.") % {"user": invitation.username},
        )
    return redirect("organisations:members", pk=organisation.pk)


# --- The invited user's side ----------------------------------------------------------------------


@login_required
@require_safe
def invitations(request):
    """The invitations waiting for this user's answer: nobody joins an organisation without it."""
    waiting = (
        MembershipInvitation.objects.open()
        .filter(user=request.user)
        .select_related("organisation", "invited_by")
        .order_by("expires_at", "pk")
    )
    return render(request, "organisations/invitations.html", {"invitations": waiting})


def _answer_invitation(request, invitation_id: int, answer) -> MembershipInvitation | None:
    # Another user's invitation does not exist for this one.
    invitation = get_object_or_404(
        MembershipInvitation.objects.select_related("organisation").filter(user=request.user),
        pk=invitation_id,
    )
    try:
        answer(request.user, invitation.pk)
    except MamoriError as exc:
        messages.error(request, exc.message)
        return None
    return invitation


@login_required
@require_POST
def accept_invitation(request, invitation_id: int):
    invitation = _answer_invitation(request, invitation_id, services.accept_invitation)
    if invitation is None:
        return redirect("organisations:invitations")
    messages.success(
        request,
        _("You are now %(role)s of %(organisation)s.")
        % {"role": invitation.get_role_display(), "organisation": invitation.organisation.name},
    )
    # A role that needs the second factor sends the user to set it up from here on.
    return redirect("organisations:detail", pk=invitation.organisation_id)


@login_required
@require_POST
def decline_invitation(request, invitation_id: int):
    invitation = _answer_invitation(request, invitation_id, services.decline_invitation)
    if invitation is not None:
        messages.success(
            request,
            _("You declined the invitation to %(organisation)s.")
            % {"organisation": invitation.organisation.name},
        )
    return redirect("organisations:invitations")


@login_required
@require_POST
def remove_member(request, pk: int, membership_id: int):
    access = Access.for_request(request)
    organisation = _members_organisation(request, pk)
    membership = get_object_or_404(
        organisation.memberships.select_related("user"), pk=membership_id
    )
    membership.organisation = organisation
    _require_manager(request, organisation)
    if not permissions.can_remove(access, membership):
        raise PermissionDenied
    try:
        services.remove_member(request.user, access, organisation.pk, membership.pk)
    except MamoriError as exc:
        messages.error(request, exc.message)
        return redirect("organisations:members", pk=organisation.pk)
    messages.success(
        request,
        _("%(user)s is no longer %(role)s.")
        % {"user": membership.user, "role": membership.get_role_display()},
    )
    if not permissions.can_view_members(Access.for_user(request.user), organisation):
        # Someone who removed their own last role here can no longer see the list.
        return redirect("home")
    return redirect("organisations:members", pk=organisation.pk)


@login_required
def create(request):
    access = Access.for_request(request)
    if not permissions.can_create_organisation(access):
        raise Http404
    form = OrganisationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            organisation = services.create_organisation(request.user, access, **form.cleaned_data)
        except MamoriError as exc:
            add_to_form(form, exc)
        else:
            messages.success(
                request,
                _("%(organisation)s was added. Now add its first members.")
                % {"organisation": organisation.name},
            )
            return redirect("organisations:members", pk=organisation.pk)
    return render(
        request, "organisations/create.html", {"form": form}, status=422 if form.errors else 200
    )
