"""What a newcomer hit in the browser, on the public and the assessor's side: the verification
page for a number that names no certificate."""

from __future__ import annotations

import pytest

from tests.browser.conftest import ui
from tests.certificates import certificate_expiring, days_from_today

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NO_SUCH = "No such certificate: no certificate has the number “%(number)s”."


@pytest.mark.parametrize("language", ["ja", "en"])
def test_verify_page_says_no_such_certificate(browse, world, language):
    issued = certificate_expiring(world, world.bank, days_from_today(100))
    public = browse("public", language)

    public.open("/verify/CE-2026-NOSUCH00", status=404)
    public.see_language()
    public.see("h1", ui("Certificate verification", language))
    public.see_class("#verify-result", "unknown")
    public.see("#verify-result", ui(NO_SUCH, language) % {"number": "CE-2026-NOSUCH00"})
    public.absent("#certificate-number")

    # A malformed number typed into the page's own form gets the same answer, not a 404 page.
    public.page.fill("#number", "not-a-number!")
    public.click_and_wait("form:has(#number) button[type=submit]")
    public.see("#verify-result", ui(NO_SUCH, language) % {"number": "NOT-A-NUMBER!"})

    # And a real number, typed into the same form, verifies.
    public.page.fill("#number", issued.number.lower())
    public.click_and_wait("form:has(#number) button[type=submit]")
    public.see_class("#verify-result", "valid")
    public.see("#certificate-number", issued.number)
