"""What waits for the signed-in user on the applicant side: the prompts that lead a role to the
one thing it can do next (today, a board signatory's declaration)."""

from __future__ import annotations

from mamori.assessments import permissions, scoring
from mamori.assessments.models import Assessment, State
from mamori.assessments.snapshot import Snapshot
from mamori.organisations.access import Access
from mamori.organisations.models import Role


def awaits_signature(access: Access, assessment: Assessment, unanswered: int) -> bool:
    """The board signatory's turn: every required question is answered and the answers as they
    stand are not declared yet (a first submission, or the corrected answers of a resubmission)."""
    return (
        permissions.can_sign(access, assessment)
        and not assessment.declaration_valid
        and unanswered == 0
    )


def awaiting_signature(access: Access) -> list[Assessment]:
    """The assessments waiting for this user's signature as a board signatory."""
    organisations = access.organisations_with({Role.BOARD_SIGNATORY})
    if not organisations:
        return []
    candidates = (
        Assessment.objects.visible_to(access)
        .filter(organisation_id__in=organisations, state__in=(State.DRAFT, State.FAILED))
        .select_related("organisation", "catalogue")
        .order_by("-created_at")
    )
    waiting = []
    for assessment in candidates:
        if not permissions.can_sign(access, assessment) or assessment.declaration_valid:
            continue  # cheap checks first: only a candidate's answers are loaded
        snapshot = Snapshot.load(assessment)
        if awaits_signature(
            access, assessment, len(scoring.unanswered(snapshot.specs, snapshot.values))
        ):
            waiting.append(assessment)
    return waiting
