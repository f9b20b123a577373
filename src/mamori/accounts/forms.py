from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.core.validators import MaxValueValidator
from django.utils.translation import gettext_lazy as _

from mamori.accounts.models import ApiToken, TokenKind


class LoginForm(AuthenticationForm):
    username = forms.CharField(
        label=_("User name"),
        max_length=150,
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "username"}),
    )
    password = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


class TotpForm(forms.Form):
    code = forms.CharField(
        label=_("Six-digit code from your authenticator app"),
        min_length=6,
        max_length=6,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "pattern": "[0-9]{6}",
                "autofocus": True,
            }
        ),
    )

    def clean_code(self) -> str:
        code = self.cleaned_data["code"].strip()
        if not code.isascii() or not code.isdigit():
            raise forms.ValidationError(_("Enter the six digits shown in your app."))
        return code


class TokenForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100)
    organisation = forms.ModelChoiceField(label=_("Organisation"), queryset=None)
    kind = forms.ChoiceField(label=_("Kind"), choices=ApiToken._meta.get_field("kind").choices)
    lifetime_days = forms.IntegerField(label=_("Valid for (days)"), required=False, min_value=1)

    def __init__(self, *args, organisations, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["organisation"].queryset = organisations
        longest = settings.TOKEN_MAX_LIFETIME_DAYS
        lifetime = self.fields["lifetime_days"]
        lifetime.max_value = longest
        lifetime.validators.append(MaxValueValidator(longest))
        lifetime.widget.attrs.update({"min": 1, "max": longest})
        lifetime.help_text = _(
            "Leave empty for the default: %(user)d days for API access, %(agent)d days for "
            "agents. At most %(longest)d days."
        ) % {
            "user": settings.TOKEN_LIFETIME_DAYS[TokenKind.USER],
            "agent": settings.TOKEN_LIFETIME_DAYS[TokenKind.AGENT],
            "longest": longest,
        }
