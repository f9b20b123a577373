"""Staff views of the advisory store. Read-only: the data comes from imports, and an edit here
would neither move the index generation nor be repeated by the next import."""

from __future__ import annotations

from django.contrib import admin

from mamori.advisories.models import Advisory, AffectedPackage, EolCycle, ImportRun, KevEntry


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class AffectedPackageInline(admin.TabularInline):
    model = AffectedPackage
    fields = ("ecosystem", "name", "ranges", "versions", "severity")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Advisory)
class AdvisoryAdmin(ReadOnlyAdmin):
    list_display = ("osv_id", "summary", "severity", "modified", "withdrawn")
    list_filter = ("severity", "affected__family")
    search_fields = ("osv_id", "summary", "affected__name")
    inlines = [AffectedPackageInline]
    show_full_result_count = False


@admin.register(KevEntry)
class KevEntryAdmin(ReadOnlyAdmin):
    list_display = ("cve", "vendor", "product", "date_added", "due_date", "known_ransomware")
    list_filter = ("known_ransomware",)
    search_fields = ("cve", "vendor", "product")


@admin.register(EolCycle)
class EolCycleAdmin(ReadOnlyAdmin):
    list_display = ("product", "cycle", "source", "release_date", "eol", "extended", "lts")
    list_filter = ("source", "product")
    search_fields = ("product", "cycle", "codename")


@admin.register(ImportRun)
class ImportRunAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "requested_by",
        "state",
        "added",
        "changed",
        "unchanged",
        "withdrawn",
        "bad",
        "skipped",
    )
    list_filter = ("state",)
