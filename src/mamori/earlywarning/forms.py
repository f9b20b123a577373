"""Forms of the early-warning pages. They check the shape of what was typed; the rules (what
may be claimed, which state may follow which, who may act) are the services' and come back as
``MamoriError`` with the field at fault."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.utils.translation import gettext_lazy as _

from mamori.core.text import validate_single_line
from mamori.earlywarning import alerts, display, registry
from mamori.earlywarning.models import IMMEDIATE_CHOICES, AlertState, AlertType, AssetKind

REASON_MAX_CHARS = 2000
# A deadline longer than a year is no deadline.
MAX_ACKNOWLEDGE_HOURS = 24 * 366


class AlertStateForm(forms.Form):
    """One lifecycle action on an alert: the state it moves to, why, and for an accepted risk
    until when."""

    state = forms.ChoiceField(label=_("New state"), choices=AlertState.choices)
    reason = forms.CharField(
        label=_("Reason"),
        required=False,
        max_length=REASON_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    until = forms.DateField(
        label=_("Accepted until"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("At most a year ahead; the alert opens again after this day."),
    )


# Each action the alert page offers: the state it leads to and the button's words. Which of
# them an alert offers follows ``alerts.ALLOWED_FROM``.
ACTIONS = (
    (AlertState.ACKNOWLEDGED, _("Acknowledge")),
    (AlertState.MITIGATED, _("Mark as mitigated")),
    (AlertState.CLOSED, _("Close")),
    (AlertState.RISK_ACCEPTED, _("Accept the risk")),
    (AlertState.FALSE_POSITIVE, _("Mark as a false positive")),
    (AlertState.NEW, _("Reopen")),
)


def actions_for(alert, failed: AlertStateForm | None = None) -> list[dict]:
    """The actions the alert's state allows, each with its form (the one that just failed
    keeps what was typed and its errors)."""
    offered = []
    for state, label in ACTIONS:
        if alert.state not in alerts.ALLOWED_FROM[state]:
            continue
        form = failed if failed is not None and failed.data.get("state") == state else None
        offered.append(
            {
                "state": state.value,
                "label": label,
                "needs_reason": state in alerts.NEEDS_REASON,
                "needs_until": state == AlertState.RISK_ACCEPTED,
                "form": form or AlertStateForm(initial={"state": state.value}),
            }
        )
    return offered


class AssetForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=AssetKind.choices)
    value = forms.CharField(
        label=_("Value"),
        max_length=300,
        help_text=_(
            "An address (198.51.100.7), a prefix (198.51.100.0/24), a range "
            "(198.51.100.10-198.51.100.20), an AS number (AS64500) or a domain (example.jp)."
        ),
    )
    include_subdomains = forms.BooleanField(
        label=_("Include its subdomains (domains only)"), required=False
    )
    label = forms.CharField(
        label=_("Description"), max_length=200, required=False, validators=[validate_single_line]
    )


class CsvImportForm(forms.Form):
    file = forms.FileField(
        label=_("CSV file"),
        help_text=_(
            "UTF-8, with a header row naming the columns kind,value,include_subdomains. "
            "Every row is registered, or none if any row is wrong."
        ),
    )


class ApproveForm(forms.Form):
    reason = forms.CharField(
        label=_("Why the claim is approved"),
        max_length=REASON_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    permission = forms.FileField(
        label=_("Hoster's permission (optional)"),
        required=False,
        help_text=_("For a range a third party hosts: its written permission (PDF, image, text)."),
    )


class RefuseForm(forms.Form):
    reason = forms.CharField(
        label=_("Why the claim is refused"),
        max_length=REASON_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class SettleForm(forms.Form):
    settlement = forms.CharField(
        label=_("How it was settled"),
        max_length=REASON_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class DeadlinesForm(forms.Form):
    """Hours to acknowledge, one field per alert type."""

    def __init__(self, data=None, *, current: dict[str, int], **kwargs):
        super().__init__(data, **kwargs)
        for value, label in AlertType.choices:
            self.fields[value] = forms.IntegerField(
                label=label,
                min_value=1,
                max_value=MAX_ACKNOWLEDGE_HOURS,
                initial=current.get(value),
            )


class TimeZoneForm(forms.Form):
    time_zone = forms.CharField(
        label=_("Time zone"),
        max_length=64,
        error_messages={"required": _("Choose a time zone.")},
    )
    next = forms.CharField(required=False, max_length=2000)

    def clean_time_zone(self) -> str:
        name = self.cleaned_data["time_zone"].strip()
        if not display.valid_time_zone(name):
            raise forms.ValidationError(
                _("'%(name)s' is not a time zone; use a name such as Asia/Tokyo or UTC."),
                params={"name": name[:64]},
            )
        return name


class SuggestionsForm(forms.Form):
    """The values from the assessment the user ticked: ``choice`` repeats, one per value
    (``kind|value|subdomains``)."""

    choice = forms.MultipleChoiceField(label=_("Register"), required=True)

    def __init__(self, data=None, *, offered: list[str], **kwargs):
        super().__init__(data, **kwargs)
        self.fields["choice"].choices = [(key, key) for key in offered]
        self.fields["choice"].error_messages["required"] = _("Tick at least one value.")


# The registry's limits, so the form's help and the service agree.
CSV_MAX_BYTES = registry.CSV_MAX_BYTES


# --- webhooks, alert e-mail, the sector's figures ----------------------------------------------


class WebhookForm(forms.Form):
    """A new webhook: the URL is checked by the service (https, a public host)."""

    url = forms.CharField(
        label=_("URL"),
        max_length=2048,
        validators=[validate_single_line],
        help_text=_(
            "An https:// address of a host on the public internet. Every delivery is signed "
            "with a secret shown once, when the webhook is added."
        ),
    )
    description = forms.CharField(
        label=_("Description"), max_length=200, required=False, validators=[validate_single_line]
    )


class WebhookDisableForm(forms.Form):
    reason = forms.CharField(
        label=_("Why it is turned off (optional)"),
        max_length=REASON_MAX_CHARS,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class PreferencesForm(forms.Form):
    """One member's alert e-mail for one organisation."""

    immediate = forms.MultipleChoiceField(
        label=_("E-mail me at once about"),
        choices=IMMEDIATE_CHOICES,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("As soon as such an alert is raised or reopened."),
    )
    daily_digest = forms.BooleanField(
        label=_("A daily digest of the other alerts"),
        required=False,
        help_text=_("Each morning, the alerts of the day before that were not e-mailed at once."),
    )


# The sector's figures are replayed from history; before this day there is none.
EARLIEST_SECTOR_DAY = dt.date(2000, 1, 1)


class SectorDayForm(forms.Form):
    day = forms.DateField(
        label=_("Day"),
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={
            "required": _("Choose a day."),
            "invalid": _("Write the day as YYYY-MM-DD."),
        },
    )

    def __init__(self, data=None, *, today: dt.date, **kwargs):
        super().__init__(data, **kwargs)
        self.today = today

    def clean_day(self) -> dt.date:
        day = self.cleaned_data["day"]
        if day > self.today:
            raise forms.ValidationError(
                _("%(day)s has not begun yet; choose today (figures so far) or an earlier day."),
                params={"day": day.isoformat()},
            )
        if day < EARLIEST_SECTOR_DAY:
            raise forms.ValidationError(
                _("Choose a day from %(day)s on."), params={"day": EARLIEST_SECTOR_DAY.isoformat()}
            )
        return day
