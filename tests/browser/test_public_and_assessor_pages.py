"""What a newcomer hit in the browser, on the public and the assessor's side: the verification
page for a number that names no certificate, the second factor after one mistyped code, and the
review page's sections, filters and "mark the remaining answers compliant"."""

from __future__ import annotations

import pytest
from django.utils import translation
from django.utils.translation import ngettext
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from mamori.assessments import scoring, services
from mamori.assessments.models import Mark
from tests.browser.conftest import ui
from tests.certificates import certificate_expiring, days_from_today
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NO_SUCH = "No such certificate: no certificate has the number “%(number)s”."


def codes(user) -> tuple[str, str]:
    """The code the user's authenticator shows now, and six digits it never accepts now."""
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    near = set()
    for steps in range(-3, 4):
        totp.drift = device.drift + steps
        near.add(f"{totp.token():06d}")
    totp.drift = device.drift
    wrong = next(code for code in (f"{digit}" * 6 for digit in range(10)) if code not in near)
    return f"{totp.token():06d}", wrong


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


def test_totp_after_one_wrong_code(browse, world):
    assessor = world.assessor
    assessor.set_password(PASSWORD)
    assessor.save(update_fields=["password"])
    tab = browse(assessor.username, "ja")
    tab.login(assessor.username, PASSWORD)
    tab.check(tab.page.url.endswith("/accounts/mfa/verify/"), "expected the two-factor check")

    # Before the second factor: no menu, only the public register; no link to the tokens page.
    links = tab.page.locator("header nav a").evaluate_all("links => links.map(a => a.pathname)")
    tab.check(links == ["/register/"], f"menu before the second factor: {links}")
    tab.absent("header a[href='/accounts/tokens/']")

    right, wrong = codes(assessor)
    tab.page.fill("#id_code", wrong)
    tab.click_and_wait("main form button[type=submit]")
    tab.see("main form", ui("That code is not valid. Check your app's clock and try again.", "ja"))
    # The right code straight after the mistake is taken.
    tab.page.fill("#id_code", right)
    tab.click_and_wait("main form button[type=submit]")
    tab.check("/accounts/mfa/" not in tab.page.url, "the right code after a wrong one was refused")
    tab.see("header nav", ui("Review queue", "ja"))
    tab.click_and_wait("header nav a[href='/review/']")
    tab.see("h1", ui("Review queue", "ja"))


def test_review_page_sections_filters_and_marking_the_rest(browse, world):
    assessment = world.submitted(failing={"A6.4"})
    assessor = world.assessor
    assessor.set_password(PASSWORD)
    assessor.save(update_fields=["password"])
    tab = browse(assessor.username, "en")
    tab.login(assessor.username, PASSWORD)
    tab.pass_mfa(assessor)
    tab.open(f"/assessments/{assessment.pk}/review/")

    # Section navigation: one click shows that section only.
    tab.click_and_wait("#review-sections a[href$='section=A6']")
    tab.see("h2#section-A6", "A6")
    qids = tab.page.locator("div.question").evaluate_all("blocks => blocks.map(b => b.id)")
    tab.check(qids and all(qid.startswith("q-A6.") for qid in qids), f"A6 shows {qids}")
    # The auto-fail filter, within the section, shows the one answer that fails automatically.
    tab.click_and_wait("#review-filters a[data-filter=auto_fail]")
    qids = tab.page.locator("div.question").evaluate_all("blocks => blocks.map(b => b.id)")
    tab.check(qids == ["q-A6.4"], f"auto-fail shows {qids}")

    # Mark the rest compliant, after confirming; the auto-fail stays unmarked.
    snapshot = services.Snapshot.load(assessment)
    remaining = scoring.remaining_compliant(snapshot.specs, snapshot.values, snapshot.verdicts)
    with translation.override("en"):
        question = ngettext(
            "Mark the %(counter)s remaining answer compliant? It is recorded as your mark, "
            "like a mark you save by hand.",
            "Mark the %(counter)s remaining answers compliant? Each is recorded as your mark, "
            "like a mark you save by hand.",
            len(remaining),
        ) % {"counter": len(remaining)}
    tab.confirm_and_wait("#mark-remaining button[type=submit]", question)
    tab.see("ul.messages", f"Marked {len(remaining)} answers compliant.")
    tab.absent("#mark-remaining")
    marked = set(
        Mark.objects.filter(answer__assessment=assessment).values_list(
            "answer__question__qid", flat=True
        )
    )
    assert marked == set(remaining)
    assert "A6.4" not in marked
    # What is left unmarked is the auto-fail, for the assessor to mark non-compliant by hand.
    tab.click_and_wait("#review-filters a[data-filter=unmarked]")
    qids = tab.page.locator("div.question").evaluate_all("blocks => blocks.map(b => b.id)")
    tab.check(qids == ["q-A6.4"], f"unmarked after marking the rest: {qids}")
