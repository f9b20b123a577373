"""Hosts and evidence in the staff admin, read-only: they change only through uploads, the
re-match task and the host pages, which keep the audit trail."""

from __future__ import annotations

from django.contrib import admin

from mamori.core.admin_site import ReadOnlyAdmin
from mamori.verification.models import Evaluation, Evidence, Host


@admin.register(Host)
class HostAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = ("hostname", "organisation", "os_pretty_name", "last_seen", "in_scope")
    list_filter = ("in_scope",)
    search_fields = ("hostname", "machine_id")
    raw_id_fields = ("organisation", "latest_evidence", "latest_evaluation")


@admin.register(Evidence)
class EvidenceAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = ("host", "collected_at", "received_at", "size", "digest")
    search_fields = ("digest", "host__hostname")
    exclude = ("payload",)
    raw_id_fields = ("host", "uploaded_by")


@admin.register(Evaluation)
class EvaluationAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = ("evidence", "evaluated_at", "trigger", "overdue_vulnerabilities")
    list_filter = ("trigger",)
    exclude = ("result",)
    raw_id_fields = ("evidence",)
