"""Assessors, scheme owners and staff must pass a TOTP check before they can do anything."""

from __future__ import annotations

from django.http import JsonResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _

from mamori.organisations.access import Access, second_factor_required

# Paths that stay open before the second factor: signing in and out, the MFA pages themselves,
# public verification and static assets.
EXEMPT_PREFIXES = (
    "/accounts/login/",
    "/accounts/logout/",
    "/accounts/mfa/",
    "/static/",
    "/healthz",
    "/readyz",
    "/register/",
    "/verify/",
    "/api/public/",
    "/api/schema/",
    "/i18n/",
)


class MfaRequiredMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if (
            user.is_authenticated
            and not user.is_verified()
            and not request.path.startswith(EXEMPT_PREFIXES)
            # Not Access.for_request: an API token scopes that later, in the view.
            and second_factor_required(user, Access.for_user(user))
        ):
            if request.path.startswith("/api/"):
                return JsonResponse(
                    {
                        "detail": _("Complete the two-factor check in the browser first."),
                        "code": "mfa_required",
                    },
                    status=403,
                )
            from django_otp.plugins.otp_totp.models import TOTPDevice

            has_device = TOTPDevice.objects.filter(user=user, confirmed=True).exists()
            return redirect("accounts:mfa_verify" if has_device else "accounts:mfa_setup")
        return self.get_response(request)
