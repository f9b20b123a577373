from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Q
from django.shortcuts import get_object_or_404, render

from mamori.assessments.models import Assessment
from mamori.certificates.models import Certificate
from mamori.core.access import Access
from mamori.organisations.models import Category, Organisation


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
            "assessments": Assessment.objects.visible_to(access)
            .filter(organisation=organisation)
            .select_related("catalogue")[:20],
            "certificates": Certificate.objects.visible_to(access).filter(
                organisation=organisation
            )[:20],
        },
    )
