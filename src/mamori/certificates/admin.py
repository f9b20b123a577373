"""Certificates in the staff admin, read-only: they are issued and revoked only by the services,
which keep the audit trail and the public register consistent."""

from __future__ import annotations

from django.contrib import admin

from mamori.certificates.models import Certificate
from mamori.core.admin_site import ReadOnlyAdmin


@admin.register(Certificate)
class CertificateAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = (
        "number",
        "organisation_name_ja",
        "level",
        "issued_on",
        "expires_on",
        "revoked_at",
    )
    list_filter = ("level",)
    search_fields = ("number", "organisation_name_ja", "organisation_name_en")
    date_hierarchy = "issued_on"
    exclude = ("pdf",)
