from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _

from mamori.core.text import validate_single_line
from mamori.organisations.models import Organisation, Role

COUNTRY_CODE = RegexValidator(
    r"^[A-Za-z]{2}\Z", _("Enter a two-letter country code such as JP."), code="country"
)


class _RoleForm(forms.Form):
    """A member form that offers only the roles the user may grant in this organisation."""

    def __init__(self, *args, roles, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].choices = [(role, Role(role).label) for role in roles]
        # The least powerful role is the default: granting power takes a deliberate choice.
        if Role.APPLICANT_CONTRIBUTOR in roles:
            self.fields["role"].initial = Role.APPLICANT_CONTRIBUTOR


class InviteMemberForm(_RoleForm):
    """An invitation to someone who already has an account. Nothing here looks the user name up:
    the answer must be the same whether it exists or not (``services.invite_member``)."""

    username = forms.CharField(
        label=_("User name"),
        max_length=150,
        help_text=_(
            "The exact user name of someone who already has an account. They join when they "
            "accept the invitation after signing in."
        ),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    role = forms.ChoiceField(label=_("Role"))


class NewUserForm(_RoleForm):
    username = forms.CharField(
        label=_("User name"),
        max_length=150,
        help_text=_("Letters, digits and @ . + - _ only; used to sign in."),
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    display_name = forms.CharField(
        label=_("Display name"), max_length=150, validators=[validate_single_line]
    )
    email = forms.EmailField(label=_("E-mail"), max_length=254)
    language = forms.ChoiceField(
        label=_("Language for e-mail"), choices=settings.LANGUAGES, initial="ja"
    )
    role = forms.ChoiceField(label=_("Role"))

    def clean_username(self) -> str:
        username = self.cleaned_data["username"]
        user_model = get_user_model()
        user_model.username_validator(username)
        # Case-insensitive, so "Alice" and "alice" never become two people who sign in alike.
        if user_model.objects.filter(username__iexact=username).exists():
            raise forms.ValidationError(_("This user name is already taken."), code="taken")
        return username


class OrganisationForm(forms.ModelForm):
    country = forms.CharField(
        label=_("Country"),
        max_length=2,
        initial="JP",
        validators=[COUNTRY_CODE],
        help_text=_("ISO 3166 two-letter code."),
    )

    class Meta:
        model = Organisation
        fields = ["name_ja", "name_en", "category", "corporate_number", "country"]

    def clean_country(self) -> str:
        return self.cleaned_data["country"].upper()

    def clean_corporate_number(self) -> str:
        number = self.cleaned_data["corporate_number"]
        if number and Organisation.objects.filter(corporate_number=number).exists():
            raise forms.ValidationError(
                _("An organisation with this corporate number already exists."), code="unique"
            )
        return number

    def validate_constraints(self) -> None:
        # The corporate number's uniqueness is checked above with a message at the field; the
        # model's conditional constraint would repeat it as a generic form-wide error.
        return None
