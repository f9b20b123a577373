"""Workflow e-mail: who hears of a submission, a clarification request, the applicant's reply to
it and a decision.

A service calls ``tasks.mail_after_commit(event, assessment)`` inside its transaction: the
recipients are chosen here, and each message is queued in the outbox with the change (a refused
or rolled-back change mails nobody) and goes out from a task of its own once the change
commits, so a mail server or broker that is down delays one message and never the request; the
task's retries send each message once (``core.mail.send_once``). Each message is plain text, in the recipient's language, with a link into
Mamori built on the instance's public address (``core.site.absolute_url``, as the certificate
PDF's verification link).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from mamori.assessments.models import Assessment, ClarificationReply, Decision, Mark, Verdict
from mamori.core.mail import send_once
from mamori.core.site import absolute_url
from mamori.organisations.models import EDITOR_ROLES, Membership, Role

log = logging.getLogger(__name__)

SUBMITTED = "submitted"
RESUBMITTED = "resubmitted"
CLARIFICATION_REQUESTED = "clarification_requested"
CLARIFIED = "clarified"
DECIDED = "decided"
EVENTS = (SUBMITTED, RESUBMITTED, CLARIFICATION_REQUESTED, CLARIFIED, DECIDED)


def _members(assessment: Assessment, roles) -> list:
    memberships = (
        Membership.objects.filter(
            organisation_id=assessment.organisation_id, role__in=roles, user__is_active=True
        )
        .exclude(user__email="")
        .select_related("user")
    )
    return sorted({m.user for m in memberships}, key=lambda user: user.pk)


def _assessors(assessment: Assessment) -> list:
    """The assigned assessor; when no one is assigned, every assessor of the body."""
    if assessment.assessor_id:
        user = assessment.assessor
        return [user] if user.is_active and user.email else []
    memberships = (
        Membership.objects.filter(
            organisation_id=assessment.certification_body_id,
            role=Role.ASSESSOR,
            user__is_active=True,
        )
        .exclude(user__email="")
        .select_related("user")
    )
    return sorted({m.user for m in memberships}, key=lambda user: user.pk)


def recipients(event: str, assessment: Assessment) -> list:
    if event in (SUBMITTED, RESUBMITTED, CLARIFIED):
        return _assessors(assessment)
    if event == CLARIFICATION_REQUESTED:
        # Those who can update the flagged answers; administrators also send them back.
        return _members(assessment, EDITOR_ROLES)
    # A decision: those who answer for the assessment, as for certificate reminders.
    return _members(assessment, (Role.APPLICANT_ADMIN, Role.BOARD_SIGNATORY))


def link(name: str, *args) -> str:
    """An absolute link into Mamori for an e-mail (no request is at hand)."""
    return absolute_url(reverse(name, args=args))


@dataclass(frozen=True)
class Message:
    subject: str
    body: str


def _context(event: str, assessment: Assessment) -> dict:
    context: dict = {"assessment": assessment, "event": event}
    if event in (SUBMITTED, RESUBMITTED):
        context["link"] = link("assessments:review", assessment.pk)
    elif event == CLARIFICATION_REQUESTED:
        context["link"] = link("assessments:detail", assessment.pk)
        context["flagged"] = [
            {"qid": mark.answer.question.qid, "text": mark.answer.question.text, "mark": mark}
            for mark in Mark.objects.filter(
                answer__assessment=assessment,
                round=assessment.round,
                verdict=Verdict.NEEDS_INFORMATION,
            )
            .select_related("answer__question__catalogue")
            .order_by("answer__question__position")
        ]
    elif event == CLARIFIED:
        context["link"] = link("assessments:review", assessment.pk)
        context["reply"] = (
            ClarificationReply.objects.filter(assessment=assessment, round=assessment.round)
            .order_by("-sent_at", "-pk")
            .first()
        )
    else:
        decision = decision_to_tell(assessment)
        context["decision"] = decision
        if decision.outcome == "pass":
            context["certificate"] = getattr(assessment, "certificate", None)
            context["link"] = link("assessments:detail", assessment.pk)
        else:
            context["link"] = link("assessments:advice", assessment.pk, decision.round)
    return context


def decision_to_tell(assessment: Assessment) -> Decision | None:
    """The decision a "decided" message is about: the newest one, which may be of an earlier
    round when the message goes out after a resubmission (the outbox may run it late)."""
    return (
        Decision.objects.filter(assessment=assessment, round__lte=assessment.round)
        .order_by("-round")
        .first()
    )


def render(event: str, assessment: Assessment, user) -> Message:
    """The message for one recipient, in their language."""
    with translation.override(user.language or settings.LANGUAGE_CODE):
        context = {**_context(event, assessment), "user": user}
        context["organisation_name"] = assessment.organisation.name
        template = SUBMITTED if event == RESUBMITTED else event  # one text says which
        subject = render_to_string(f"assessments/email/{template}_subject.txt", context)
        body = render_to_string(f"assessments/email/{template}_body.txt", context)
    return Message(" ".join(subject.split()), body)


def send(event: str, assessment_id: int, user_id: int, *, key: str | None = None) -> bool:
    """Send one message; with a ``key``, only if the message of that key has not been
    accepted by the mail server before. True when it went out now."""
    assessment = (
        Assessment.objects.select_related(
            "organisation", "catalogue", "certification_body", "assessor"
        )
        .filter(pk=assessment_id)
        .first()
    )
    user = get_user_model().objects.filter(pk=user_id, is_active=True).exclude(email="").first()
    if assessment is None or user is None:
        return False  # gone since: nobody to tell, or nothing to tell about
    if event == DECIDED and decision_to_tell(assessment) is None:
        return False  # the decision is gone (an appeal or a correction): nothing to tell
    message = render(event, assessment, user)
    if key is None:
        send_mail(message.subject, message.body, settings.DEFAULT_FROM_EMAIL, [user.email])
    elif not send_once(
        f"workflow:{key}", to=user.email, subject=message.subject, body=message.body
    ):
        return False
    log.info("workflow mail %s for %s sent to user %s", event, assessment.reference, user.pk)
    return True
