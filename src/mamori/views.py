"""The start page: what each signed-in user has to do, across the apps.

It sits above the apps (as ``urls.py`` does), so that ``core`` stays their ground floor.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.shortcuts import render

from mamori.assessments import prompts
from mamori.assessments.models import Assessment, State
from mamori.certificates.models import Certificate
from mamori.organisations.access import Access
from mamori.organisations.models import MembershipInvitation, Organisation, Role


@login_required
def home(request):
    access = Access.for_request(request)
    context = {
        "access": access,
        # Nobody joins an organisation without accepting: the start page says when one waits.
        "invitation_count": MembershipInvitation.objects.open().filter(user=request.user).count(),
    }
    if access.applicant_organisation_ids:
        organisations = list(Organisation.objects.filter(pk__in=access.applicant_organisation_ids))
        context["organisations"] = organisations
        # Applicant administrators manage their organisation's people from here.
        context["managed_organisations"] = [
            o for o in organisations if access.has_role(o.pk, Role.APPLICANT_ADMIN)
        ]
        # Only what the role can do: administrators start assessments, signatories sign.
        context["can_start"] = bool(context["managed_organisations"])
        context["awaiting_signature"] = prompts.awaiting_signature(access)
        context["assessments"] = (
            Assessment.objects.visible_to(access)
            .filter(organisation_id__in=access.applicant_organisation_ids)
            .select_related("organisation", "catalogue")[:20]
        )
        context["certificates"] = Certificate.objects.filter(
            organisation_id__in=access.applicant_organisation_ids
        ).order_by("-issued_on")[:10]
    if access.is_assessor:
        queue = Assessment.objects.filter(certification_body_id__in=access.assessor_body_ids)
        context["my_queue_count"] = queue.filter(
            assessor_id=access.user_id,
            state__in=(State.SUBMITTED, State.RESUBMITTED, State.IN_REVIEW),
        ).count()
        context["unassigned_count"] = queue.filter(
            assessor__isnull=True, state__in=(State.SUBMITTED, State.RESUBMITTED)
        ).count()
    if access.is_scheme_owner:
        # Sector-wide posture as aggregates only: scheme owners never see answers.
        context["state_counts"] = dict(
            Assessment.objects.values_list("state")
            .annotate(n=Count("pk"))
            .values_list("state", "n")
        )
        context["state_labels"] = State.choices
        context["certificate_count"] = Certificate.objects.currently_valid().count()
        context["organisation_count"] = Organisation.objects.count()
    return render(request, "home.html", context)
