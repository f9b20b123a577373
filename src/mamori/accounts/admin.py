"""Staff administration of user accounts: Django's user admin with our own fields."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from mamori.accounts.models import User
from mamori.audit.services import record


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    fieldsets = (
        *DjangoUserAdmin.fieldsets,
        (_("Mamori"), {"fields": ("display_name", "language")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": (
                    "username",
                    "display_name",
                    "email",
                    "language",
                    "usable_password",
                    "password1",
                    "password2",
                ),
            },
        ),
    )
    list_display = ("username", "display_name", "email", "language", "is_staff", "is_active")
    search_fields = ("username", "display_name", "email")

    def has_delete_permission(self, request, obj=None) -> bool:
        # Audit entries name their actor; deleting the account would alter them and so break
        # the hash chain. Deactivate the account instead.
        return False

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        record(
            request.user,
            "user.changed" if change else "user.created",
            obj,
            # Which fields changed, never their values: no password or hash in the trail.
            details={
                "via": "admin",
                "username": obj.get_username(),
                "fields": sorted(f for f in form.changed_data if "password" not in f),
            },
        )
