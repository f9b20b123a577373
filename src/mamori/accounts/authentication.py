"""``Authorization: Token <key>`` for the API, scoped to the token's organisation.

A refused token is answered 401 with a reason the client's operator can act on: an expired key
names the day it ended and where to get a new one, a rotated key says that its successor is the
one to configure. The reasons go only to whoever holds the key; a key that matches nothing (or
whose user is deactivated) gets no detail.
"""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from mamori.accounts.models import ApiToken, TokenKind, TokenState, hash_token


def _tokens_page() -> str:
    return settings.SITE_URL + reverse("accounts:tokens")


def refusal(token: ApiToken, now) -> exceptions.AuthenticationFailed | None:
    """Why this token cannot be used now, or None if it can."""
    state = token.state_at(now)
    when = timezone.localtime(token.expires_at).isoformat(timespec="minutes")
    if state == TokenState.REVOKED:
        return exceptions.AuthenticationFailed(
            _(
                "This token was revoked. Create a new token on the tokens page (%(url)s) "
                "and configure its key."
            )
            % {"url": _tokens_page()},
            code="token_revoked",
        )
    if state == TokenState.EXPIRED and token.replaced_by_id is not None:
        return exceptions.AuthenticationFailed(
            _(
                "This token was replaced by a new key, and the old key stopped working at "
                "%(when)s. Configure the new key (the tokens page: %(url)s)."
            )
            % {"when": when, "url": _tokens_page()},
            code="token_replaced",
        )
    if state == TokenState.EXPIRED:
        return exceptions.AuthenticationFailed(
            _(
                "This token expired at %(when)s. Rotate it or create a new token on the tokens "
                "page (%(url)s) and configure the new key."
            )
            % {"when": when, "url": _tokens_page()},
            code="token_expired",
        )
    return None


class OrganisationTokenAuthentication(BaseAuthentication):
    keyword = "Token"

    def authenticate(self, request):
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(_("Send the header as 'Token <key>'."))
        try:
            key = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(_("Invalid token.")) from None
        token = (
            ApiToken.objects.select_related("user", "organisation")
            .filter(key_hash=hash_token(key))
            .first()
        )
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        now = timezone.now()
        refused = refusal(token, now)
        if refused is not None:
            raise refused
        if token.kind == TokenKind.AGENT and not getattr(request, "_agent_upload", False):
            # Agent tokens may only upload evidence; the evidence endpoint opts in.
            raise exceptions.PermissionDenied(_("Agent tokens may only upload evidence."))
        if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request) -> str:
        return self.keyword


class OrganisationTokenScheme(OpenApiAuthenticationExtension):
    target_class = OrganisationTokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": (
                "`Token <key>`; a token sees only its own organisation. Tokens expire; an "
                "expired, rotated or revoked token is answered 401 with a reason."
            ),
        }
