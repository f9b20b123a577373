from mamori.organisations.access import Access


def navigation(request):
    """Which parts of the navigation the signed-in user has (one membership query per page)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav": None}
    access = Access.for_request(request)
    return {
        "nav": {
            "applicant": bool(access.applicant_organisation_ids),
            "assessor": access.is_assessor,
            "scheme_owner": access.is_scheme_owner,
        }
    }
