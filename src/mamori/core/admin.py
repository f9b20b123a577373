"""The outbox and the mail receipts in the staff admin, read-only: what waits, what failed and
why (they change only through ``core.outbox`` and ``core.mail``)."""

from __future__ import annotations

from django.contrib import admin

from mamori.core.admin_site import ReadOnlyAdmin
from mamori.core.models import MailReceipt, OutboxMessage


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = ("pk", "task", "state", "attempts", "created_at", "due_at", "done_at")
    list_filter = ("state", "task")
    search_fields = ("task", "last_error")
    ordering = ("-pk",)


@admin.register(MailReceipt)
class MailReceiptAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = ("key", "recipient", "subject", "attempts", "accepted_at")
    search_fields = ("key", "recipient", "subject")
    ordering = ("-pk",)
