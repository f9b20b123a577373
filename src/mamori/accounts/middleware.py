"""Assessors, scheme owners and staff must pass a TOTP check before they can do anything."""

from __future__ import annotations

from django.http import JsonResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _

from mamori.organisations.models import MFA_ROLES, Membership

# Paths that stay open before the second factor: signing in and out, the MFA pages themselves,
# public verification and static assets.
EXEMPT_PREFIXES = (
    "/accounts/login/",
    "/accounts/logout/",
    "/accounts/mfa/",
    "/static/",
    "/healthz",
    "/register/",
    "/verify/",
    "/api/public/",
    "/api/schema/",
    "/i18n/",
)


def user_needs_mfa(user) -> bool:
    if user.is_staff or user.is_superuser:
        return True
    return Membership.objects.filter(user_id=user.pk, role__in=MFA_ROLES).exists()


class MfaRequiredMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if (
            user.is_authenticated
            and not user.is_verified()
            and not request.path.startswith(EXEMPT_PREFIXES)
            and user_needs_mfa(user)
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
