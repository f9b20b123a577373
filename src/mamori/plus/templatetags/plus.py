"""``{% plus_panel certificate %}``: on a certificate's (or its assessment's) page, the way to
its Cyber Essentials Plus audit: a link to the audit, or to start one when the user may."""

from __future__ import annotations

from django import template
from django.utils import timezone

from mamori.organisations.access import Access
from mamori.plus import permissions, services
from mamori.plus.models import PlusAudit

register = template.Library()


@register.inclusion_tag("plus/_panel.html", takes_context=True)
def plus_panel(context, certificate):
    request = context.get("request")
    if request is None or certificate is None:
        return {"show": False}
    access = Access.for_request(request)
    if certificate.level == "PLUS":
        audit = PlusAudit.objects.visible_to(access).filter(pk=certificate.plus_audit_id).first()
        return {"show": audit is not None, "audit": audit, "issued_by_plus": True}
    audit = PlusAudit.objects.visible_to(access).filter(base_certificate=certificate).first()
    can_request = False
    deadline = None
    if audit is None and certificate.assessment_id and permissions.can_request(access, certificate):
        deadline = services.plus_deadline(certificate)
        can_request = certificate.status == "valid" and timezone.localdate() <= deadline
    return {
        "show": audit is not None or can_request,
        "audit": audit,
        "can_request": can_request,
        "deadline": deadline,
        "certificate": certificate,
    }
