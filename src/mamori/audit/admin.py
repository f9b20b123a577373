"""The audit trail in the staff admin, read-only: it is appended to only by
``mamori.audit.services.record``, and any edit would break its hash chain."""

from __future__ import annotations

from django.contrib import admin

from mamori.audit.models import AuditEvent
from mamori.core.admin_site import ReadOnlyAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = ("seq", "created_at", "actor_name", "action", "object_type", "object_id")
    list_filter = ("action", "object_type")
    search_fields = ("actor_name", "action", "object_id")
    ordering = ("-seq",)
