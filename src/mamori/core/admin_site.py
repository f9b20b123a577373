"""The Django admin, for staff only, behind our own login and the second factor.

The stock admin has its own login form, which would bypass the throttled ``/accounts/login/``
page, and it sends non-staff users to that form. Here the login form is a redirect to ours, an
anonymous visitor is sent to our login page, and a signed-in user without staff rights finds
nothing (404). ``MfaRequiredMiddleware`` sends staff to the second factor before any admin page;
``has_permission`` checks it again so the admin never relies on the middleware's order alone.
"""

from __future__ import annotations

from functools import update_wrapper

from django.contrib.admin import AdminSite
from django.contrib.admin.apps import AdminConfig
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.http import Http404
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache

# Imported by INSTALLED_APPS before the models are ready: nothing here may import a model at
# module level (``django.contrib.auth.views`` does, so it is imported where it is used).


def _to_login(target: str):
    from django.contrib.auth.views import redirect_to_login

    return redirect_to_login(target)


class MamoriAdminSite(AdminSite):
    site_header = _("Mamori administration")
    site_title = _("Mamori administration")
    index_title = _("Staff administration")

    def has_permission(self, request) -> bool:
        user = request.user
        return super().has_permission(request) and user.is_verified()

    def admin_view(self, view, cacheable=False):
        guarded = super().admin_view(view, cacheable)

        def inner(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return _to_login(request.get_full_path())
            if not self.has_permission(request):
                raise Http404
            return guarded(request, *args, **kwargs)

        return update_wrapper(never_cache(inner), guarded)

    def login(self, request, extra_context=None):
        """Our throttled login page, then back into the admin (only ever into the admin)."""
        index = reverse("admin:index", current_app=self.name)
        target = request.GET.get(REDIRECT_FIELD_NAME) or index
        if not target.startswith(index):
            target = index
        return _to_login(target)


class MamoriAdminConfig(AdminConfig):
    default_site = "mamori.core.admin_site.MamoriAdminSite"


class ReadOnlyAdmin:
    """A ModelAdmin mixin for records that change only through services (certificates, the
    audit trail, catalogues): staff may look, never add, edit or delete."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
