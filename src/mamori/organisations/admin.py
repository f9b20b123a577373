"""Staff administration of organisations and memberships. Every change made here is appended to
the audit trail, like the same change made through the member pages."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from mamori.audit.services import record
from mamori.organisations.conflicts import membership_conflict
from mamori.organisations.models import (
    Membership,
    MembershipInvitation,
    Organisation,
    Role,
    WorkingGroup,
)


def _changed(form) -> list[str]:
    return sorted(form.changed_data)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    fields = ("user", "role", "created_at")
    readonly_fields = ("user", "role", "created_at")
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        # Memberships are added on their own page, where the model's rules are checked.
        return False


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = (
        "name_ja",
        "name_en",
        "category",
        "corporate_number",
        "country",
        "identity_verified",
    )
    list_filter = ("category", "country", "identity_verified")
    readonly_fields = ("identity_confirmed_by", "identity_confirmed_at", "resembles")
    search_fields = ("name_ja", "name_en", "corporate_number")
    ordering = ("name_ja",)
    inlines = (MembershipInline,)

    def has_delete_permission(self, request, obj=None) -> bool:
        # Audit entries refer to the organisation; deleting it would alter them and so break
        # the hash chain. Organisations are kept.
        return False

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        record(
            request.user,
            "organisation.changed" if change else "organisation.created",
            obj,
            organisation=obj,
            details={"via": "admin", "fields": _changed(form)},
        )


class MembershipForm(forms.ModelForm):
    """Staff grant roles directly (no invitation: staff act on a request made to them), but
    never against the separation of duties."""

    class Meta:
        model = Membership
        fields = ("user", "organisation", "role")

    def clean(self):
        data = super().clean()
        user, organisation, role = data.get("user"), data.get("organisation"), data.get("role")
        if user is not None and organisation is not None and role in Role.values:
            reason = membership_conflict(user.pk, organisation, role)
            if reason:
                self.add_error("role", reason)
        return data


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    form = MembershipForm
    list_display = ("user", "organisation", "role", "created_at")
    list_filter = ("role", "organisation__category")
    search_fields = ("user__username", "user__display_name", "organisation__name_ja")
    list_select_related = ("user", "organisation")
    autocomplete_fields = ("user", "organisation")

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        record(
            request.user,
            "membership.changed" if change else "membership.added",
            obj,
            organisation=obj.organisation,
            details={
                "via": "admin",
                "user": obj.user.get_username(),
                "user_id": obj.user_id,
                "role": obj.role,
            },
        )

    def delete_model(self, request, obj) -> None:
        self._record_removal(request, obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        for membership in queryset.select_related("user", "organisation"):
            self._record_removal(request, membership)
        super().delete_queryset(request, queryset)

    @staticmethod
    def _record_removal(request, membership: Membership) -> None:
        record(
            request.user,
            "membership.removed",
            membership,
            organisation=membership.organisation,
            details={
                "via": "admin",
                "user": membership.user.get_username(),
                "user_id": membership.user_id,
                "role": membership.role,
            },
        )


@admin.register(MembershipInvitation)
class MembershipInvitationAdmin(admin.ModelAdmin):
    """Read only: invitations are answered by the invited user on their own page."""

    list_display = ("username", "organisation", "role", "state", "invited_by", "expires_at")
    list_filter = ("state", "role")
    search_fields = ("username", "organisation__name_ja", "organisation__name_en")
    list_select_related = ("organisation", "invited_by")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class WorkingGroupForm(forms.ModelForm):
    class Meta:
        model = WorkingGroup
        fields = ("name_ja", "name_en", "source", "convenor", "members")

    def clean(self):
        data = super().clean()
        convenor, members = data.get("convenor"), data.get("members")
        if convenor is not None and members is not None and convenor in members:
            self.add_error(
                "members", _("The convenor calls the group; it is not one of its members.")
            )
        return data


@admin.register(WorkingGroup)
class WorkingGroupAdmin(admin.ModelAdmin):
    form = WorkingGroupForm
    list_display = ("name_ja", "name_en", "convenor")
    search_fields = ("name_ja", "name_en")
    autocomplete_fields = ("convenor",)
    filter_horizontal = ("members",)

    def save_related(self, request, form, formsets, change) -> None:
        # After the members are saved, so the entry records the roster as stored.
        super().save_related(request, form, formsets, change)
        group = form.instance
        record(
            request.user,
            "working_group.changed" if change else "working_group.created",
            group,
            details={
                "via": "admin",
                "fields": _changed(form),
                "convenor": group.convenor_id,
                "members": sorted(group.members.values_list("pk", flat=True)),
            },
        )
