from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _


class ScopeForm(forms.Form):
    in_scope = forms.TypedChoiceField(
        label=_("In scope"),
        choices=[("1", _("In scope")), ("0", _("Out of scope"))],
        coerce=lambda value: value == "1",
    )
