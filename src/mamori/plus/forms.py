from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from mamori.plus.models import DeviceKind, Outcome, Result
from mamori.plus.testcases import EVIDENCE_CASES

RECORDED = [(Result.PASS, Result.PASS.label), (Result.FAIL, Result.FAIL.label)]


class RequestForm(forms.Form):
    certificate = forms.ChoiceField(label=_("Cyber Essentials certificate"))

    def __init__(self, *args, certificates, **kwargs):
        super().__init__(*args, **kwargs)
        self.certificates = {str(c.pk): c for c in certificates}
        self.fields["certificate"].choices = [
            (str(c.pk), f"{c.number} — {c.organisation_name} ({c.issued_on})") for c in certificates
        ]

    def clean_certificate(self):
        return self.certificates[self.cleaned_data["certificate"]]


class AddressesForm(forms.Form):
    public_addresses = forms.CharField(
        label=_("Public IP addresses and ranges, one per line"),
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 4}),
    )


class DeviceForm(forms.Form):
    name = forms.CharField(label=_("Device name"), max_length=255)
    os_build = forms.CharField(
        label=_("Operating system and build (e.g. Windows 11 Pro 23H2)"), max_length=120
    )
    kind = forms.ChoiceField(label=_("Kind"), choices=DeviceKind.choices)


class TestCaseForm(forms.Form):
    __test__ = False

    result = forms.ChoiceField(label=_("Result"), choices=RECORDED, widget=forms.RadioSelect)
    notes = forms.CharField(
        label=_("Notes for the applicant (what was tested; on a fail, what to fix)"),
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    file = forms.FileField(label=_("Supporting file (optional)"), required=False)


class DeviceCheckForm(forms.Form):
    code = forms.ChoiceField(choices=[(code, code) for code in EVIDENCE_CASES])
    status = forms.ChoiceField(label=_("Result"), choices=RECORDED)
    notes = forms.CharField(label=_("Notes"), required=False, max_length=4000)
    reason = forms.CharField(
        label=_("Reason for overriding the evidence"), required=False, max_length=4000
    )


class DecisionForm(forms.Form):
    outcome = forms.ChoiceField(
        label=_("Decision"), choices=Outcome.choices, widget=forms.RadioSelect
    )
    summary = forms.CharField(
        label=_("Summary for the applicant"),
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


def kinds_from_post(data) -> dict[str, str]:
    """The kinds the frame form posted: ``kind-host-<id>`` / ``kind-device-<id>`` fields."""
    kinds = {}
    for key in data:
        if key.startswith(("kind-host-", "kind-device-")):
            value = data.get(key)
            if value:
                kinds[key.removeprefix("kind-")] = value
    return kinds
