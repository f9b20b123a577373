"""Login lock-out in three tiers, each with its own limit (django-axes counts, we decide).

- one account from one address (``MAMORI_LOGIN_FAILURE_LIMIT``): someone guessing a password;
- one account from all addresses together (``MAMORI_LOGIN_ACCOUNT_FAILURE_LIMIT``): the same
  guessing spread over many addresses;
- one address for all accounts together (``MAMORI_LOGIN_ADDRESS_FAILURE_LIMIT``): one source
  trying many accounts. Its limit is higher because many honest people can share an address (an
  office behind NAT, a proxy that is not configured as trusted): at the account limit, a handful
  of typos by some would lock out everyone else there.

Axes compares one number with one limit (``AXES_FAILURE_LIMIT``); ``get_failures`` therefore
reports the tier closest to its own limit on the scale of the first tier's limit, so that any
tier reaching its limit locks, and nothing else changes in how axes records and answers.
"""

from __future__ import annotations

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username, get_lockout_parameters
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum

ACCOUNT_AND_ADDRESS = ("username", "ip_address")
ACCOUNT = ("username",)
ADDRESS = ("ip_address",)


def tier_limits() -> dict[tuple[str, ...], int]:
    return {
        ACCOUNT_AND_ADDRESS: settings.LOGIN_FAILURE_LIMIT,
        ACCOUNT: settings.LOGIN_ACCOUNT_FAILURE_LIMIT,
        ADDRESS: settings.LOGIN_ADDRESS_FAILURE_LIMIT,
    }


def _tier(parameter) -> tuple[str, ...]:
    return (parameter,) if isinstance(parameter, str) else tuple(parameter)


class TieredLockoutHandler(AxesDatabaseHandler):
    def get_failures(self, request, credentials: dict | None = None) -> int:
        limits = tier_limits()
        scale = settings.AXES_FAILURE_LIMIT
        parameters = get_lockout_parameters(request, credentials)
        closest = 0
        for parameter, attempts in zip(
            parameters, self.get_user_attempts(request, credentials), strict=True
        ):
            failures = attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0
            # Failures still allowed in this tier, turned into a count against the scale limit.
            closest = max(closest, scale - (limits[_tier(parameter)] - failures))
        return closest

    def reset_user_attempts(self, request, credentials: dict | None = None) -> int:
        """A successful sign-in clears that account's failures, and only those: the stock
        handler also cleared every failure from the address, so one user signing in behind a
        shared address would wipe out the count against someone trying many accounts there."""
        username = get_client_username(request, credentials)
        count, _ = AccessAttempt.objects.filter(username=username).delete()
        return count
