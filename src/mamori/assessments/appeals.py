"""Appeals against a failed assessment.

After a fail decision the applicant's administrator may appeal once per decision, with grounds,
within the catalogue's ``appeal_working_days`` (10 working days by default) of the decision.
The answers are frozen while the appeal is pending. An assessor of the same certification body
who did not make the decision reviews it and either upholds the fail or overturns it; an
overturned fail is a pass, and the certificate is issued exactly as for any pass. Each step
locks the assessment, checks, writes and appends to the audit trail in one transaction.

Views and the API ask the ``can_*`` functions here what a user may do; refusals are raised as
errors with a translated reason.
"""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from mamori.assessments import permissions, scoring
from mamori.assessments.models import (
    Answer,
    Appeal,
    AppealOutcome,
    AppealStatus,
    Assessment,
    Decision,
    Outcome,
    State,
)
from mamori.assessments.snapshot import Snapshot
from mamori.audit.services import record
from mamori.certificates.services import issue_certificate
from mamori.core.errors import MamoriError, NotAllowed, WrongState
from mamori.core.workdays import add_working_days
from mamori.organisations import conflicts
from mamori.organisations.access import Access
from mamori.organisations.models import Role

# Two working weeks. Longer than the 2-working-day resubmission window, because an appeal argues
# that the decision itself was wrong: the applicant reads the advice report, gathers evidence and
# gets the grounds approved inside a bank, which takes more than a few days. Counted in working
# days, so Golden Week or the year-end closure never eat the window. Catalogue versions may set
# their own ``appeal_working_days``; this is the value for those that do not (CE-JP 2026).
DEFAULT_APPEAL_WORKING_DAYS = 10
TEXT_LIMIT = 4000


def appeal_working_days(assessment: Assessment) -> int:
    return int(
        assessment.catalogue.settings.get("appeal_working_days", DEFAULT_APPEAL_WORKING_DAYS)
    )


def appealed_decision(assessment: Assessment) -> Decision | None:
    """The fail decision of the current round, which is what an appeal is against."""
    if assessment.state != State.FAILED:
        return None
    return Decision.objects.filter(
        assessment=assessment, round=assessment.round, outcome=Outcome.FAIL
    ).first()


def appeal_due(assessment: Assessment, decision: Decision) -> dt.date:
    """The last day an appeal against ``decision`` may be lodged."""
    decided_on = timezone.localdate(decision.decided_at)
    return add_working_days(decided_on, appeal_working_days(assessment))


def answers_changed_since(decision: Decision) -> bool:
    """Whether the applicant began correcting answers after the decision: they chose to fix and
    resubmit, and an appeal would have to judge answers the assessor never saw."""
    return Answer.objects.filter(
        assessment_id=decision.assessment_id, updated_at__gt=decision.decided_at
    ).exists()


def _clean_text(raw, field: str, missing) -> str:
    """Grounds and reasons are read by people: plain text, line breaks kept, nothing else that
    would not print."""
    if raw is not None and not isinstance(raw, str):
        raise MamoriError(_("Write the text as plain text."), field=field)
    text = (raw or "").strip().replace("\r\n", "\n").replace("\r", "\n")
    if not text:
        raise MamoriError(missing, field=field)
    if len(text) > TEXT_LIMIT:
        raise MamoriError(_("Keep the text under 4,000 characters."), field=field)
    if any(_unprintable(char) for char in text):
        raise MamoriError(_("The text contains control characters."), field=field)
    return text


def _unprintable(char: str) -> bool:
    # Control characters other than line breaks and tabs, and lone surrogates (valid JSON
    # escapes that cannot be stored as UTF-8).
    code = ord(char)
    return (code < 32 and char not in "\n\t") or 0xD800 <= code <= 0xDFFF


# --- Who may do what ---------------------------------------------------------------------------


def lodge_refusal(access: Access, assessment: Assessment) -> MamoriError | None:
    """Why ``access`` may not appeal now (None: they may). Who is checked before when: a role
    that may never appeal is told so (403), not about the state (409)."""
    if not access.has_role(assessment.organisation_id, Role.APPLICANT_ADMIN):
        return NotAllowed(_("Only an applicant administrator of the organisation can appeal."))
    decision = appealed_decision(assessment)
    if decision is None:
        return WrongState(_("Only a failed assessment can be appealed."), code="not_failed")
    if Appeal.objects.filter(decision=decision).exists():
        return WrongState(_("This decision has already been appealed."), code="already_appealed")
    due = appeal_due(assessment, decision)
    if timezone.localdate() > due:
        return WrongState(
            _("The time to appeal this decision ended on %(date)s.") % {"date": due},
            code="appeal_window_closed",
        )
    if answers_changed_since(decision):
        return WrongState(
            _(
                "Answers were changed after the decision, so it can no longer be appealed; "
                "resubmit the corrected answers instead."
            ),
            code="answers_changed",
        )
    return None


def can_lodge(access: Access, assessment: Assessment) -> bool:
    return lodge_refusal(access, assessment) is None


def decide_refusal(access: Access, assessment: Assessment) -> MamoriError | None:
    """Why ``access`` may not decide the pending appeal (None: they may)."""
    if not permissions.is_reviewer(access, assessment):
        return NotAllowed(_("Only an assessor of the certification body can decide an appeal."))
    if conflicts.is_member(access.user_id, assessment.organisation_id):
        return NotAllowed(conflicts.impartiality_message(), code=conflicts.CONFLICT_CODE)
    appeal = assessment.pending_appeal
    if appeal is None:
        return WrongState(_("No appeal is waiting for a decision."), code="no_pending_appeal")
    if appeal.decision.assessor_id == access.user_id:
        return NotAllowed(
            _(
                "You made the decision under appeal; another assessor of the certification body "
                "must review it."
            ),
            code="same_assessor",
        )
    return None


def can_decide(access: Access, assessment: Assessment) -> bool:
    return decide_refusal(access, assessment) is None


# --- Lodging and deciding ----------------------------------------------------------------------


def _lock(assessment_id: int) -> Assessment:
    return Assessment.objects.select_for_update().select_related("catalogue").get(pk=assessment_id)


def lodge(user, access: Access, assessment_id: int, grounds) -> Appeal:
    grounds = _clean_text(grounds, "grounds", _("Give the grounds for the appeal."))
    with transaction.atomic():
        assessment = _lock(assessment_id)
        refusal = lodge_refusal(access, assessment)
        if refusal is not None:
            raise refusal
        decision = appealed_decision(assessment)
        suspended = assessment.can_resubmit
        appeal = Appeal.objects.create(
            assessment=assessment,
            decision=decision,
            grounds=grounds,
            lodged_by=user,
            lodged_at=timezone.now(),
            resubmission_suspended=suspended,
        )
        resubmit_by = assessment.feedback_due
        assessment.feedback_due = None  # the answers are frozen until the appeal is decided
        assessment.save(update_fields=["feedback_due", "updated_at"])
        record(
            user,
            "appeal.lodged",
            appeal,
            organisation=assessment.organisation,
            details={
                "assessment": assessment.pk,
                "round": decision.round,
                "decision": decision.pk,
                "appeal_due": appeal_due(assessment, decision).isoformat(),
                "resubmission_suspended": suspended,
                "resubmit_by_before": resubmit_by.isoformat() if resubmit_by else None,
            },
            after={"grounds": grounds},
        )
    return appeal


def decide(user, access: Access, assessment_id: int, outcome, reason) -> Appeal:
    if outcome not in AppealOutcome.values:
        raise MamoriError(_("Choose uphold or overturn."), field="outcome")
    reason = _clean_text(
        reason,
        "reason",
        _("Give the reason for the decision on the appeal; the applicant reads it."),
    )
    with transaction.atomic():
        assessment = _lock(assessment_id)
        refusal = decide_refusal(access, assessment)
        if refusal is not None:
            raise refusal
        appeal = Appeal.objects.select_for_update().get(pk=assessment.pending_appeal.pk)
        if outcome == AppealOutcome.OVERTURN:
            snapshot = Snapshot.load(assessment)
            automatic = scoring.auto_failures(snapshot.specs, snapshot.values)
            if automatic:
                # The catalogue itself fails these answers; no assessor's judgement can pass them.
                raise WrongState(
                    _(
                        "Answer %(qid)s fails automatically under the catalogue, so the fail "
                        "cannot be overturned."
                    )
                    % {"qid": automatic[0]},
                    code="auto_fail",
                )
        now = timezone.now()
        appeal.reviewer = user
        appeal.decided_at = now
        appeal.reason = reason
        details = {"assessment": assessment.pk, "round": appeal.decision.round}
        if outcome == AppealOutcome.OVERTURN:
            appeal.status = AppealStatus.OVERTURNED
            appeal.save()
            before = assessment.state
            assessment.state = State.PASSED
            assessment.decided_at = now
            assessment.feedback_due = None
            assessment.save()
            record(
                user,
                "appeal.overturned",
                appeal,
                organisation=assessment.organisation,
                details=details,
                after={"reason": reason},
            )
            record(
                user,
                "assessment.passed_on_appeal",
                assessment,
                organisation=assessment.organisation,
                details={
                    "from": before,
                    "to": assessment.state,
                    "round": assessment.round,
                    "appeal": appeal.pk,
                },
            )
            # Valid from the second assessor's decision, as a certificate is from any pass.
            issue_certificate(user, assessment, appeal)
        else:
            appeal.status = AppealStatus.UPHELD
            appeal.save()
            if appeal.resubmission_suspended and assessment.round == 1:
                assessment.feedback_due = add_working_days(
                    timezone.localdate(now),
                    assessment.catalogue.settings["resubmission_working_days"],
                )
                assessment.save(update_fields=["feedback_due", "updated_at"])
            details["resubmit_by"] = (
                assessment.feedback_due.isoformat() if assessment.feedback_due else None
            )
            record(
                user,
                "appeal.upheld",
                appeal,
                organisation=assessment.organisation,
                details=details,
                after={"reason": reason},
            )
    return appeal
