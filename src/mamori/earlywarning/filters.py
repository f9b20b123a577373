"""The one filter of alerts, shared by the inbox page and the API: by type, state, severity and
asset. A value that is not one of the choices is an error naming the field (the page shows it
beside the filter and lists the alerts without that condition; the API answers 400)."""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.db.models import Case, IntegerField, Value, When
from django.utils.translation import gettext_lazy as _

from mamori.earlywarning.models import (
    OPEN_STATES,
    SEVERITY_ORDER,
    AlertState,
    AlertType,
    Asset,
    Severity,
)

# "open" stands for the states that still need someone: new and acknowledged.
OPEN = "open"
STATE_CHOICES = [("", _("Any")), (OPEN, _("Open (new or acknowledged)")), *AlertState.choices]


class AlertFilter(forms.Form):
    type = forms.ChoiceField(
        label=_("Type"), required=False, choices=[("", _("Any")), *AlertType.choices]
    )
    state = forms.ChoiceField(label=_("State"), required=False, choices=STATE_CHOICES)
    severity = forms.ChoiceField(
        label=_("Severity"), required=False, choices=[("", _("Any")), *Severity.choices]
    )
    # Checked with one look-up, never by loading every claim (a page lists them in its select).
    asset = forms.ModelChoiceField(
        label=_("Asset"), required=False, queryset=Asset.objects.none(), empty_label=_("Any")
    )

    def __init__(self, data=None, *, assets=None, **kwargs):
        """``assets``: a queryset of the claims the viewer may filter by (their
        organisations')."""
        super().__init__(data, **kwargs)
        self.fields["asset"].queryset = assets if assets is not None else Asset.objects.none()

    @property
    def conditions(self) -> dict:
        """The valid conditions (a field in error is left out)."""
        if not self.is_bound:
            return {}
        self.is_valid()
        return {
            name: value
            for name, value in self.cleaned_data.items()
            if value not in (None, "") and name not in self.errors
        }

    def narrow(self, alerts):
        conditions = self.conditions
        if "type" in conditions:
            alerts = alerts.filter(type=conditions["type"])
        if conditions.get("state") == OPEN:
            alerts = alerts.filter(state__in=OPEN_STATES)
        elif "state" in conditions:
            alerts = alerts.filter(state=conditions["state"])
        if "severity" in conditions:
            alerts = alerts.filter(severity=conditions["severity"])
        if "asset" in conditions:
            alerts = alerts.filter(asset=conditions["asset"])
        return alerts

    def query_string(self) -> str:
        """The valid conditions as a query string, for pagination links."""
        return urlencode(
            {
                name: value.pk if isinstance(value, Asset) else value
                for name, value in self.conditions.items()
            }
        )


def inbox_order(alerts):
    """Open alerts first, then the most severe, then the most recently seen."""
    return alerts.annotate(
        _closed=Case(
            When(state__in=OPEN_STATES, then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        ),
        _severity=Case(
            *(When(severity=name, then=Value(rank)) for name, rank in SEVERITY_ORDER.items()),
            default=Value(len(SEVERITY_ORDER)),
            output_field=IntegerField(),
        ),
    ).order_by("_closed", "_severity", "-last_seen", "-pk")
