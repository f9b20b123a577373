from __future__ import annotations

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from mamori.core.text import validate_lines, validate_single_line
from mamori.organisations.models import validate_corporate_number
from mamori.supplychain.models import (
    Criticality,
    Disclosure,
    NodeKind,
    Reliance,
    SiteKind,
    Substitutability,
    TierOrigin,
)


def _country(value: str) -> str:
    value = (value or "").strip().upper()
    if value and (len(value) != 2 or not value.isascii() or not value.isalpha()):
        raise forms.ValidationError(_("Use a two-letter country code such as JP or US."))
    return value


class CountryField(forms.CharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 2)
        kwargs.setdefault("help_text", _("Two-letter code, e.g. JP"))
        super().__init__(**kwargs)

    def clean(self, value):
        return _country(super().clean(value))


class ServiceForm(forms.Form):
    name_ja = forms.CharField(
        label=_("Name (Japanese)"), max_length=200, validators=[validate_single_line]
    )
    name_en = forms.CharField(
        label=_("Name (English)"), max_length=200, required=False, validators=[validate_single_line]
    )
    criticality = forms.ChoiceField(label=_("Criticality"), choices=Criticality.choices)
    rto_hours = forms.IntegerField(label=_("RTO (hours)"), min_value=0, required=False)
    rpo_hours = forms.IntegerField(label=_("RPO (hours)"), min_value=0, required=False)
    reliance = forms.ChoiceField(
        label=_("Reliance on suppliers"), choices=[("", "—"), *Reliance.choices], required=False
    )
    substitutability = forms.ChoiceField(
        label=_("Substitutability"),
        choices=[("", "—"), *Substitutability.choices],
        required=False,
    )
    exit_plan = forms.CharField(
        label=_("Exit plan"),
        max_length=4000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    # Not required: a form posted without it (an older page, a script) keeps the usual count.
    tier_origin = forms.TypedChoiceField(
        label=_("Tiers count from"),
        choices=TierOrigin.choices,
        initial=TierOrigin.SERVICE,
        empty_value=TierOrigin.SERVICE,
        required=False,
        widget=forms.RadioSelect,
    )


class HearingForm(forms.Form):
    held_on = forms.DateField(label=_("Held on"), widget=forms.DateInput(attrs={"type": "date"}))
    interviewer = forms.CharField(
        label=_("Interviewer (who held it on your side)"),
        max_length=200,
        validators=[validate_single_line],
    )
    participants = forms.CharField(
        label=_("The supplier's participants"),
        max_length=500,
        required=False,
        validators=[validate_single_line],
    )
    notes = forms.CharField(
        label=_("What was said"), max_length=10000, widget=forms.Textarea(attrs={"rows": 6})
    )
    follow_ups = forms.CharField(
        label=_("Follow-ups (what was agreed, by whom, by when)"),
        max_length=4000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def clean_held_on(self):
        held_on = self.cleaned_data["held_on"]
        if held_on > timezone.localdate():
            raise forms.ValidationError(_("A hearing is recorded once it has been held."))
        return held_on


class CampaignForm(forms.Form):
    organisation = forms.ChoiceField(label=_("Organisation"))
    title = forms.CharField(label=_("Title"), max_length=200, validators=[validate_single_line])
    services = forms.MultipleChoiceField(
        label=_("Critical services"), widget=forms.CheckboxSelectMultiple
    )
    deadline = forms.DateField(label=_("Answer by"), widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, organisations, services, **kwargs):
        super().__init__(*args, **kwargs)
        self.organisations = {str(o.pk): o for o in organisations}
        self.services = {str(s.pk): s for s in services}
        self.fields["organisation"].choices = [(k, o.name) for k, o in self.organisations.items()]
        self.fields["services"].choices = [
            (k, f"{s.name} — {s.owner.name}") for k, s in self.services.items()
        ]

    def clean_organisation(self):
        return self.organisations[self.cleaned_data["organisation"]]

    def clean_services(self):
        return [self.services[k] for k in self.cleaned_data["services"]]


class InviteForm(forms.Form):
    target = forms.ChoiceField(label=_("For"))
    need = forms.CharField(
        label=_("Need (what the supplier provides for it)"),
        max_length=200,
        help_text=_("Alternative suppliers of the same need: invite each with the same need."),
        validators=[validate_single_line],
    )
    supplier_name = forms.CharField(
        label=_("Supplier name"), max_length=200, validators=[validate_single_line]
    )
    country = CountryField(label=_("Country"), required=False)
    email = forms.EmailField(label=_("Supplier contact e-mail"))

    def __init__(self, *args, targets, **kwargs):
        super().__init__(*args, **kwargs)
        self.targets = {str(t.pk): t for t in targets}
        self.fields["target"].choices = [(k, t.name) for k, t in self.targets.items()]
        if len(self.targets) == 1:
            self.fields["target"].widget = forms.HiddenInput()
            self.fields["target"].initial = next(iter(self.targets))

    def clean_target(self):
        return self.targets[self.cleaned_data["target"]]


class AnswerForm(forms.Form):
    kind = forms.ChoiceField(
        label=_("What you supply"),
        choices=[(NodeKind.ICT, NodeKind.ICT.label), (NodeKind.PART, NodeKind.PART.label)],
    )
    name_ja = forms.CharField(
        label=_("Name of the service or part (Japanese)"),
        max_length=200,
        validators=[validate_single_line],
    )
    name_en = forms.CharField(
        label=_("Name of the service or part (English)"),
        max_length=200,
        required=False,
        validators=[validate_single_line],
    )
    country = CountryField(label=_("Country it is delivered from"))
    corporate_number = forms.CharField(
        label=_("Corporate number (13 digits)"), max_length=13, required=False
    )
    lei = forms.CharField(label=_("LEI (20 characters)"), max_length=20, required=False)
    parent_name = forms.CharField(
        label=_("Ultimate parent company"),
        max_length=200,
        required=False,
        validators=[validate_single_line],
    )
    has_bcp = forms.TypedChoiceField(
        label=_("Business continuity plan"),
        choices=[("", "—"), ("yes", _("Yes")), ("no", _("No"))],
        coerce=lambda v: v == "yes",
        empty_value=None,
        required=False,
    )
    recovery_hours = forms.IntegerField(
        label=_("Recovery time after a disruption (hours)"), min_value=0, required=False
    )
    inventory_days = forms.IntegerField(
        label=_("Days of inventory (physical goods)"), min_value=0, required=False
    )
    certification_declared = forms.BooleanField(
        label=_("We hold a security certification (e.g. ISMS / ISO 27001)"), required=False
    )
    certification_text = forms.CharField(
        label=_("Certification and evidence (scheme, number, validity)"),
        max_length=4000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    certification_file = forms.FileField(label=_("Evidence file"), required=False)
    disclosure = forms.ChoiceField(
        label=_("How much of your supply chain you disclose"), choices=Disclosure.choices
    )

    def clean_corporate_number(self):
        value = self.cleaned_data["corporate_number"].strip()
        if value:
            validate_corporate_number(value)
        return value

    def clean_lei(self):
        value = self.cleaned_data["lei"].strip().upper()
        if value and (len(value) != 20 or not value.isalnum() or not value.isascii()):
            raise forms.ValidationError(_("An LEI has 20 letters and digits."))
        return value

    def clean(self):
        data = super().clean()
        # The file's type, content and size are checked where it is stored
        # (services.save_answers, the allow-list of assessment evidence).
        upload = data.get("certification_file")
        if (
            data.get("certification_declared")
            and not (data.get("certification_text") or "").strip()
            and not upload
            and not self.initial.get("has_file")
        ):
            self.add_error(
                "certification_text",
                _("A declared certification needs evidence: describe it or attach a file."),
            )
        return data


class SiteRowForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=SiteKind.choices)
    name = forms.CharField(
        label=_("Name or city"), max_length=200, required=False, validators=[validate_single_line]
    )
    country = CountryField(label=_("Country"), required=False)

    def clean(self):
        data = super().clean()
        if data.get("name") and not data.get("country"):
            self.add_error("country", _("Give the site's country."))
        return data


class NeedRowForm(forms.Form):
    name = forms.CharField(
        label=_("Need"), max_length=200, required=False, validators=[validate_single_line]
    )
    providers = forms.CharField(
        label=_("Alternative providers, one per line"),
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        validators=[validate_lines],
    )

    def clean(self):
        data = super().clean()
        if data.get("providers", "").strip() and not data.get("name", "").strip():
            self.add_error("name", _("Name the need these providers serve."))
        return data

    def provider_names(self) -> list[str]:
        return [
            line.strip()
            for line in self.cleaned_data.get("providers", "").splitlines()
            if line.strip()
        ]


SiteFormSet = forms.formset_factory(SiteRowForm, extra=2, max_num=50, validate_max=True)
NeedFormSet = forms.formset_factory(NeedRowForm, extra=2, max_num=50, validate_max=True)


class ClaimForm(forms.Form):
    name_ja = forms.CharField(
        label=_("Organisation name (Japanese)"),
        max_length=200,
        validators=[validate_single_line],
        help_text=_("Your organisation's registered legal name."),
    )
    name_en = forms.CharField(
        label=_("Organisation name (English)"),
        max_length=200,
        required=False,
        validators=[validate_single_line],
    )
    corporate_number = forms.CharField(
        label=_("Corporate number (13 digits)"),
        max_length=13,
        required=False,
        help_text=_(
            "The 13-digit number issued by the National Tax Agency; required for an "
            "organisation in Japan."
        ),
    )
    country = CountryField(label=_("Country"), initial="JP")
    username = forms.CharField(label=_("User name"), max_length=150)
    email = forms.EmailField(label=_("E-mail"))
    password = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password2 = forms.CharField(
        label=_("Password again"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean_username(self):
        from django.contrib.auth.validators import UnicodeUsernameValidator

        value = self.cleaned_data["username"].strip()
        UnicodeUsernameValidator()(value)
        return value

    def clean_corporate_number(self):
        value = self.cleaned_data["corporate_number"].strip()
        if value:
            validate_corporate_number(value)
        return value

    def clean(self):
        data = super().clean()
        if data.get("password") and data.get("password") != data.get("password2"):
            self.add_error("password2", _("The two passwords differ."))
        if (
            data.get("country") == "JP"
            and "corporate_number" in data
            and not data["corporate_number"]
        ):
            self.add_error(
                "corporate_number",
                _("An organisation registered in Japan gives its 13-digit corporate number."),
            )
        return data


class BindForm(forms.Form):
    organisation = forms.ChoiceField(label=_("Answer for"))

    def __init__(self, *args, organisations, **kwargs):
        super().__init__(*args, **kwargs)
        self.organisations = {str(o.pk): o for o in organisations}
        self.fields["organisation"].choices = [(k, o.name) for k, o in self.organisations.items()]

    def clean_organisation(self):
        return self.organisations[self.cleaned_data["organisation"]]
