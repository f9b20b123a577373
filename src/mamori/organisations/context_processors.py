from mamori.organisations.access import Access, second_factor_required
from mamori.organisations.models import Role


def navigation(request):
    """Which parts of the navigation the signed-in user has (one membership query per page).

    Someone who still owes the second factor gets no menu: every link in it would only lead
    back to the two-factor check (accounts/middleware.py)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav": None}
    access = Access.for_request(request)
    verified = getattr(user, "is_verified", None)  # django-otp's middleware sets it
    if verified is not None and not verified() and second_factor_required(user, access):
        return {"nav": None, "second_factor_pending": True}
    return {
        "nav": {
            "applicant": bool(access.applicant_organisation_ids),
            "assessor": access.is_assessor,
            "scheme_owner": access.is_scheme_owner,
            # The sector dashboard's readers: scheme owners and observers (supervisors).
            "sector": bool(access.organisations_with({Role.SCHEME_OWNER, Role.OBSERVER})),
        }
    }
