"""What a user may do to one assessment. Views and the API ask here, never decide themselves.

Visibility (404 for outsiders) is the queryset's job: ``Assessment.objects.visible_to(access)``.
These checks answer the next question: among those who may see it, who may do what, when.
"""

from __future__ import annotations

from mamori.assessments.models import Assessment, State
from mamori.organisations.access import Access
from mamori.organisations.models import Role

MARKABLE_STATES = (State.SUBMITTED, State.RESUBMITTED, State.IN_REVIEW)


def is_applicant(access: Access, assessment: Assessment) -> bool:
    return assessment.organisation_id in access.applicant_organisation_ids


def is_editor(access: Access, assessment: Assessment) -> bool:
    return assessment.organisation_id in access.editor_organisation_ids


def is_reviewer(access: Access, assessment: Assessment) -> bool:
    """An assessor of the certification body the assessment was submitted to."""
    return (
        assessment.certification_body_id in access.assessor_body_ids
        and assessment.state != State.DRAFT
    )


def is_assigned(access: Access, assessment: Assessment) -> bool:
    return is_reviewer(access, assessment) and assessment.assessor_id == access.user_id


def is_impartial(access: Access, assessment: Assessment) -> bool:
    """The user holds no role in the assessed organisation (what the pages show; the services
    ask the database, since an API token's access shows one organisation only)."""
    return assessment.organisation_id not in access.organisation_ids


def answers_open(assessment: Assessment) -> bool:
    """Whether the applicant may change any answer at all in the assessment's current state."""
    if assessment.state == State.DRAFT:
        return not assessment.is_overdue
    if assessment.state == State.CLARIFICATION:
        return assessment.feedback_window_open
    return assessment.can_resubmit


def can_edit(access: Access, assessment: Assessment) -> bool:
    return is_editor(access, assessment) and answers_open(assessment)


def can_delete_evidence(access: Access, assessment: Assessment, attachment) -> bool:
    """An evidence file can be removed by those who add files, while answers are open, as long
    as the assessor has not received it: before the submission, or added since the last one."""
    if not can_edit(access, assessment):
        return False
    return assessment.state == State.DRAFT or (
        assessment.submitted_at is not None and attachment.uploaded_at > assessment.submitted_at
    )


def can_sign(access: Access, assessment: Assessment) -> bool:
    """A board signatory declares the answers before submission, and again before a
    resubmission, since the corrected answers are new statements."""
    return (assessment.state == State.DRAFT or assessment.can_resubmit) and access.has_role(
        assessment.organisation_id, Role.BOARD_SIGNATORY
    )


def can_submit(access: Access, assessment: Assessment) -> bool:
    return assessment.state == State.DRAFT and access.has_role(
        assessment.organisation_id, Role.APPLICANT_ADMIN
    )


def can_respond(access: Access, assessment: Assessment) -> bool:
    return (
        assessment.state == State.CLARIFICATION
        and assessment.feedback_window_open
        and access.has_role(assessment.organisation_id, Role.APPLICANT_ADMIN)
    )


def clarification_lapsed(assessment: Assessment) -> bool:
    """The applicant let the clarification window pass: the assessor goes on without them."""
    return assessment.state == State.CLARIFICATION and not assessment.feedback_window_open


def can_resubmit(access: Access, assessment: Assessment) -> bool:
    return assessment.can_resubmit and access.has_role(
        assessment.organisation_id, Role.APPLICANT_ADMIN
    )


def can_mark(access: Access, assessment: Assessment) -> bool:
    return (
        is_assigned(access, assessment)
        and is_impartial(access, assessment)
        and (assessment.state in MARKABLE_STATES or clarification_lapsed(assessment))
    )


def can_decide(access: Access, assessment: Assessment) -> bool:
    return (
        is_assigned(access, assessment)
        and is_impartial(access, assessment)
        and (assessment.state == State.IN_REVIEW or clarification_lapsed(assessment))
    )


def can_take(access: Access, assessment: Assessment) -> bool:
    """Any assessor of the body may take over a submission that is not yet decided."""
    return (
        is_reviewer(access, assessment)
        and is_impartial(access, assessment)
        and assessment.assessor_id != access.user_id
        and assessment.state in (*MARKABLE_STATES, State.CLARIFICATION)
    )
