"""Forms of the reporting pages: the shape of what was typed; the rules (who may sign, which
period a pack may cover) are the services' and come back as ``ReportingError``."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from mamori.core.text import validate_single_line


class PackPeriodForm(forms.Form):
    period_from = forms.DateField(label=_("From"), widget=forms.DateInput(attrs={"type": "date"}))
    period_to = forms.DateField(label=_("To"), widget=forms.DateInput(attrs={"type": "date"}))


class OwnerForm(forms.Form):
    user = forms.TypedChoiceField(label=_("Director who owns cyber risk"), coerce=int)

    def __init__(self, *args, board_members=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].choices = [
            (member.pk, member.get_full_name() or member.get_username()) for member in board_members
        ]


class SignForm(forms.Form):
    meeting_date = forms.DateField(
        label=_("Board meeting"), widget=forms.DateInput(attrs={"type": "date"})
    )
    minutes_reference = forms.CharField(
        label=_("Minutes reference"), max_length=100, validators=[validate_single_line]
    )
    comment = forms.CharField(
        label=_("Comment (optional)"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    code = forms.RegexField(
        label=_("Code from your authenticator app"),
        regex=r"^\d{6}$",
        error_messages={"invalid": _("Enter the 6 digits your authenticator app shows.")},
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )
