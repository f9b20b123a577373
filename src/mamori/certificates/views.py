from __future__ import annotations

import re
from contextlib import nullcontext

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import FileResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone, translation
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from mamori.assessments.forms import RevokeForm
from mamori.certificates import services
from mamori.certificates.models import Certificate
from mamori.core.errors import MamoriError
from mamori.earlywarning.overdue import overdue_alerts
from mamori.organisations.access import Access
from mamori.reporting.services import board_reviewed_on
from mamori.verification.services import continuous_assurance

NUMBER_PATTERN = re.compile(r"^[A-Z0-9-]{4,32}$")
REGISTER_PAGE_SIZE = 50
SHOWN_NUMBER_CHARS = 40  # of a number that names no certificate, echoed back on the page
# How long a shared cache (nginx in deploy/) may answer for the public verification page without
# asking again: a revocation shows there at most this long after it was recorded, while a rush
# of look-ups (a QR code on a letter, a partner's script) costs the application one request per
# certificate and language every few seconds.
PUBLIC_VERIFY_MAX_AGE = 5
PAGE_LANGUAGES = ("ja", "en")


def _visible(request):
    return Certificate.objects.visible_to(Access.for_request(request)).select_related(
        "organisation", "certification_body"
    )


@login_required
def certificate_list(request):
    status = request.GET.get("status", "")
    certificates = _visible(request)
    if status in ("valid", "expired", "revoked"):
        certificates = certificates.with_status(status)
    page = Paginator(certificates, 50).get_page(request.GET.get("page"))
    return render(request, "certificates/list.html", {"page": page, "status": status})


@login_required
def detail(request, number: str):
    access = Access.for_request(request)
    certificate = get_object_or_404(_visible(request), number=number)
    return render(
        request,
        "certificates/detail.html",
        {
            "certificate": certificate,
            "can_revoke": services.can_revoke(access, certificate)
            and certificate.revoked_at is None,
            "form": RevokeForm(),
            # Aggregate posture from the agents: figures only, never hosts (the scheme owner
            # sees this page too). The public verification page does not show it.
            "assurance": continuous_assurance(certificate.organisation_id),
            # Overdue early-warning alerts, in the same panel: for the organisation's members
            # and its assessors, never the scheme owner (nor the public pages).
            "overdue_alerts": overdue_alerts(access, certificate.organisation_id),
        },
    )


@login_required
def pdf(request, number: str):
    certificate = get_object_or_404(_visible(request), number=number)
    if not certificate.pdf:
        messages.info(request, _("The PDF is still being prepared; try again in a moment."))
        return redirect("certificates:detail", number=number)
    return FileResponse(
        certificate.pdf.open("rb"),
        as_attachment=True,
        filename=f"{certificate.number}.pdf",
        content_type="application/pdf",
    )


@login_required
@require_POST
def revoke(request, number: str):
    access = Access.for_request(request)
    certificate = get_object_or_404(_visible(request), number=number)
    form = RevokeForm(request.POST)
    if not form.is_valid():
        messages.error(
            request, _("Give the reason for revoking; it is recorded in the audit trail.")
        )
        return redirect("certificates:detail", number=number)
    try:
        services.revoke(request.user, access, certificate.pk, form.cleaned_data["reason"])
    except MamoriError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _("The certificate was revoked."))
    return redirect("certificates:detail", number=number)


def register(request):
    """The public register: currently valid certificates, searchable by name or number."""
    # NUL characters are dropped: nobody searches for one and PostgreSQL refuses them.
    query = (request.GET.get("q") or "").replace("\x00", "").strip()[:100]
    certificates = Certificate.objects.currently_valid().select_related(
        "organisation", "certification_body"
    )
    if query:
        certificates = certificates.filter(
            Q(organisation_name_ja__icontains=query)
            | Q(organisation_name_en__icontains=query)
            | Q(number__iexact=query)
        )
    certificates = certificates.order_by("organisation_name_ja", "number")
    page = Paginator(certificates, REGISTER_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "certificates/register.html", {"page": page, "query": query})


def _no_such_certificate(request, number: str):
    """The public page's own answer to a number that names no certificate (404, not the
    generic not-found page): the reader typed or scanned it and needs to know what it means."""
    return render(
        request,
        "certificates/verify.html",
        {"certificate": None, "number": number[:SHOWN_NUMBER_CHARS]},
        status=404,
    )


def verify(request, number: str):
    """Public verification of one certificate by number: valid, expired or revoked.

    For someone not signed in the page is the same for everyone who reads it in the same
    language: no cookie is set (its language switch is a ``?lang=`` link instead of a form that
    needs a CSRF cookie), so a shared cache may keep it for a few seconds."""
    language = request.GET.get("lang")
    chosen = translation.override(language) if language in PAGE_LANGUAGES else nullcontext()
    with chosen:
        response = _verify(request, number)
        response.headers["Content-Language"] = translation.get_language()
    if request.user.is_authenticated:
        patch_cache_control(response, private=True, no_cache=True)
    else:
        patch_cache_control(response, public=True, max_age=PUBLIC_VERIFY_MAX_AGE)
    return response


def _verify(request, number: str):
    number = number.strip().upper()
    certificate = None
    if NUMBER_PATTERN.match(number):
        certificate = (
            Certificate.objects.select_related("organisation", "certification_body")
            .filter(number=number)
            .first()
        )
    if certificate is None:
        return _no_such_certificate(request, number)
    return render(
        request,
        "certificates/verify.html",
        {
            "certificate": certificate,
            "today": timezone.localdate(),
            # Only the date of the board's latest review of a signed pack: nothing of its
            # content reaches a public page.
            "board_reviewed_on": board_reviewed_on(certificate.organisation_id),
        },
    )


def verify_lookup(request):
    number = (request.GET.get("number") or "").replace("\x00", "").strip().upper()
    if NUMBER_PATTERN.match(number):
        return redirect("certificates:verify", number=number)
    if number:
        return _no_such_certificate(request, number)
    return redirect("certificates:register")
