from __future__ import annotations

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from mamori.accounts import mfa
from mamori.accounts import tokens as token_services
from mamori.accounts.forms import LoginForm, TokenForm, TotpForm
from mamori.accounts.models import ApiToken, TokenState
from mamori.audit.services import record
from mamori.organisations.access import Access
from mamori.organisations.models import Organisation


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    authentication_form = LoginForm
    redirect_authenticated_user = True


@require_POST
def logout_view(request):
    return auth_views.LogoutView.as_view()(request)


def _next_url(request) -> str:
    from django.utils.http import url_has_allowed_host_and_scheme

    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, {request.get_host()}, request.is_secure()
    ):
        return target
    return "/"


@login_required
def mfa_setup(request):
    """Enrol a TOTP authenticator. A user with a confirmed device verifies instead."""
    if TOTPDevice.objects.filter(user=request.user, confirmed=True).exists():
        return redirect("accounts:mfa_verify")
    device = TOTPDevice.objects.filter(user=request.user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=request.user, name="authenticator", confirmed=False)
    form = TotpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["code"]):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            otp_login(request, device)
            record(request.user, "account.mfa_enrolled", request.user)
            messages.success(request, _("Two-factor authentication is on."))
            return redirect(_next_url(request))
        form.add_error("code", _("That code is not valid. Check your app's clock and try again."))
    qr = segno.make(device.config_url, error="m")
    return render(
        request,
        "accounts/mfa_setup.html",
        {
            "form": form,
            "qr_data_uri": qr.svg_data_uri(scale=4),
            "secret": _base32(device),
        },
    )


def _base32(device: TOTPDevice) -> str:
    import base64

    return base64.b32encode(device.bin_key).decode("ascii").rstrip("=")


@login_required
def mfa_verify(request):
    device = TOTPDevice.objects.filter(user=request.user, confirmed=True).first()
    if device is None:
        return redirect("accounts:mfa_setup")
    form = TotpForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            # Locked: two codes sent at once must both be counted if wrong.
            device = TOTPDevice.objects.select_for_update().get(pk=device.pk)
            wait = mfa.seconds_to_wait(
                device.throttling_failure_count,
                device.throttling_failure_timestamp,
                timezone.now(),
            )
            verified = not wait and device.verify_token(form.cleaned_data["code"])
        if verified:
            otp_login(request, device)
            return redirect(_next_url(request))
        if wait:
            status = 429
            form.add_error(
                "code",
                ngettext(
                    "Too many wrong codes. Try again in %(seconds)d second.",
                    "Too many wrong codes. Try again in %(seconds)d seconds.",
                    wait,
                )
                % {"seconds": wait},
            )
        else:
            form.add_error(
                "code", _("That code is not valid. Check your app's clock and try again.")
            )
    return render(request, "accounts/mfa_verify.html", {"form": form}, status=status)


def _with_states(tokens, now, rotatable: set[int]) -> list[ApiToken]:
    """The tokens with what the pages show beside each: its state and whether it may be rotated
    here (revoking is offered for every token a page lists that is not revoked yet)."""
    rows = list(tokens)
    for token in rows:
        token.state = token.state_at(now)
        token.rotatable = token.pk in rotatable
    return rows


def _tokens_page(request, access, form, *, issued=None, rotation=None):
    now = timezone.now()
    rotatable = set(token_services.rotatable_by(request.user, access).values_list("pk", flat=True))
    rows = _with_states(
        ApiToken.objects.filter(user=request.user).select_related("organisation", "replaced_by"),
        now,
        rotatable,
    )
    return render(
        request,
        "accounts/tokens.html",
        {
            "form": form,
            "issued": issued,
            "rotation": rotation,
            "tokens": rows,
            "expiring": [token for token in rows if token.state == TokenState.EXPIRING],
            "warning_days": settings.TOKEN_EXPIRY_WARNING_DAYS,
            "administered": Organisation.objects.filter(
                pk__in=token_services.administered_organisation_ids(access)
            ),
        },
        # A refused form (e.g. an organisation the user is not a member of) is a 4xx, not a 200.
        status=422 if form.errors else 200,
    )


@login_required
def tokens(request):
    access = Access.for_user(request.user)
    organisations = Organisation.objects.filter(pk__in=access.organisation_ids)
    form = TokenForm(request.POST or None, organisations=organisations)
    issued = None
    if request.method == "POST" and form.is_valid():
        token, key = token_services.issue_token(
            request.user,
            form.cleaned_data["organisation"],
            name=form.cleaned_data["name"],
            kind=form.cleaned_data["kind"],
            lifetime_days=form.cleaned_data["lifetime_days"],
        )
        issued = {"token": token, "key": key}
        form = TokenForm(organisations=organisations)
    return _tokens_page(request, access, form, issued=issued)


@login_required
@require_POST
def rotate_token(request, pk: int):
    access = Access.for_user(request.user)
    try:
        rotation = token_services.rotate_token(request.user, access, pk)
    except ApiToken.DoesNotExist:
        raise Http404 from None
    organisations = Organisation.objects.filter(pk__in=access.organisation_ids)
    return _tokens_page(
        request,
        access,
        TokenForm(organisations=organisations),
        issued={"token": rotation.new, "key": rotation.key},
        rotation=rotation,
    )


@login_required
@require_POST
def revoke_token(request, pk: int):
    access = Access.for_user(request.user)
    try:
        token = token_services.revoke_token(request.user, access, pk)
    except ApiToken.DoesNotExist:
        raise Http404 from None
    messages.success(request, _("The token was revoked."))
    if request.POST.get("back") == "organisation" and (
        token.organisation_id in token_services.administered_organisation_ids(access)
    ):
        return redirect("accounts:organisation_tokens", token.organisation_id)
    return redirect("accounts:tokens")


@login_required
def organisation_tokens(request, pk: int):
    """Every token of an organisation, for its applicant administrators: those that expire soon
    first, so an agent about to stop reporting is seen before it does."""
    access = Access.for_user(request.user)
    try:
        tokens = token_services.organisation_tokens(access, pk)
    except PermissionError:
        raise Http404 from None
    organisation = get_object_or_404(Organisation, pk=pk)
    rotatable = set(token_services.rotatable_by(request.user, access).values_list("pk", flat=True))
    rows = _with_states(tokens, timezone.now(), rotatable)
    return render(
        request,
        "accounts/organisation_tokens.html",
        {
            "organisation": organisation,
            "tokens": rows,
            "expiring": [token for token in rows if token.state == TokenState.EXPIRING],
            "warning_days": settings.TOKEN_EXPIRY_WARNING_DAYS,
        },
    )


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    success_url = "/"

    def form_valid(self, form):
        messages.success(self.request, _("Your password was changed."))
        return super().form_valid(form)
