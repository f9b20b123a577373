"""How long someone must wait before trying another authenticator code.

django-otp's own throttle makes the user wait from the very first wrong code (1 s, then 2, 4,
8 ...) and answers any attempt inside the wait as a failure: a mistyped code followed at once by
the right one (typed quickly or pasted) was refused with "too many wrong codes". Mamori turns
that throttle off (``OTP_TOTP_THROTTLE_FACTOR = 0``; django-otp still counts the failures on
the device) and applies this rule instead: the first few wrong codes cost nothing, then the
wait doubles from half a minute. A right code resets the count.

Guessing stays out of reach: a code is one of a million and about three are accepted at a time
(the current step and its neighbours), so even the free attempts give a chance of 1 in 67,000,
and a day of waiting buys only a dozen more. Pure: no Django.
"""

from __future__ import annotations

import datetime as dt
import math

FREE_WRONG_CODES = 5
FIRST_WAIT_SECONDS = 30
LONGEST_WAIT_SECONDS = 24 * 60 * 60


def seconds_to_wait(wrong_codes: int, last_wrong_at: dt.datetime | None, now: dt.datetime) -> int:
    """Whole seconds until the next code may be tried (0: it may be tried now).

    ``wrong_codes`` is the number of wrong codes since the last right one and ``last_wrong_at``
    when the latest was typed."""
    if wrong_codes < FREE_WRONG_CODES or last_wrong_at is None:
        return 0
    wait = min(FIRST_WAIT_SECONDS * 2 ** (wrong_codes - FREE_WRONG_CODES), LONGEST_WAIT_SECONDS)
    remaining = wait - (now - last_wrong_at).total_seconds()
    return max(0, math.ceil(remaining))
