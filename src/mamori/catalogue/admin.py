"""Requirement catalogues in the staff admin, read-only: they are loaded from the YAML files in
the repository and a version in use never changes."""

from __future__ import annotations

from django.contrib import admin

from mamori.catalogue.models import Catalogue
from mamori.core.admin_site import ReadOnlyAdmin


@admin.register(Catalogue)
class CatalogueAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = ("version", "title_ja", "valid_from", "source_name", "loaded_at")
