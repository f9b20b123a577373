"""The assessment workflow: every state change, answer, mark and decision goes through here.

Each function locks the assessment row, checks permission and state, writes, and appends to the
audit trail in one transaction, so a refused or failed request leaves nothing half-written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dateutil.relativedelta import relativedelta
from django.db import IntegrityError, transaction
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from mamori.assessments import assignment, notifications, permissions, scoring, tasks
from mamori.assessments.models import (
    Answer,
    Assessment,
    Attachment,
    ClarificationReply,
    Decision,
    Level,
    Mark,
    Outcome,
    State,
    Verdict,
)
from mamori.assessments.snapshot import Snapshot
from mamori.audit import chain
from mamori.audit.services import Change, record, record_many
from mamori.catalogue.models import Question
from mamori.catalogue.services import current_catalogue
from mamori.catalogue.spec import AnswerError
from mamori.certificates.services import issue_certificate
from mamori.core import outbox
from mamori.core.errors import Conflict, MamoriError, NotAllowed, WrongState
from mamori.core.text import first_control_character, validate_single_line
from mamori.core.workdays import add_working_days
from mamori.organisations import conflicts
from mamori.organisations.access import Access
from mamori.organisations.models import Category, Organisation, Role


def answers_digest(values: dict[str, Any]) -> str:
    return chain.digest(sorted((qid, value) for qid, value in values.items() if value is not None))


def _lock(assessment_id: int) -> Assessment:
    # Only the assessment's row: a plain FOR UPDATE over the join would also lock the catalogue
    # row, making every save of every organisation on that catalogue wait for each other.
    return (
        Assessment.objects.select_for_update(of=("self",))
        .select_related("catalogue", "organisation")
        .get(pk=assessment_id)
    )


def _require_role(access: Access, assessment: Assessment, role: str, message) -> None:
    """Who may act is checked before when: a role that may never do this gets 403, and only
    those who may, in another state, are told about the state (409)."""
    if not access.has_role(assessment.organisation_id, role):
        raise NotAllowed(message)


def _state_change(actor, assessment: Assessment, action: str, before: str, **details) -> None:
    record(
        actor,
        action,
        assessment,
        organisation=assessment.organisation,
        details={"from": before, "to": assessment.state, "round": assessment.round, **details},
    )


# --- Applicant ------------------------------------------------------------------------------


def start_assessment(
    user,
    access: Access,
    organisation: Organisation,
    certification_body: Organisation,
    level: str = Level.CE,
) -> Assessment:
    if not access.has_role(organisation.pk, Role.APPLICANT_ADMIN):
        raise NotAllowed(_("Only an applicant administrator can start an assessment."))
    if certification_body.category != Category.CERTIFICATION_BODY:
        raise MamoriError(_("Choose a certification body."), field="certification_body")
    if level not in Level.values:
        raise MamoriError(_("Unknown level."), field="level")
    if level == Level.PLUS:
        # Plus is a technical audit of a valid Cyber Essentials certificate (mamori.plus), not a
        # self-assessment of its own: starting one here would bypass the basic pass.
        raise MamoriError(
            _(
                "Cyber Essentials Plus is not a self-assessment: pass Cyber Essentials first, "
                "then start the Plus audit from the certificate."
            ),
            field="level",
            code="plus_needs_certificate",
        )
    catalogue = current_catalogue(timezone.localdate())
    if catalogue is None:
        raise WrongState(_("No requirement catalogue is in force yet; ask the scheme owner."))
    with transaction.atomic():
        assessment = Assessment.objects.create(
            organisation=organisation,
            catalogue=catalogue,
            certification_body=certification_body,
            level=level,
            started_by=user,
            complete_by=timezone.localdate()
            + relativedelta(months=catalogue.settings["completion_months"]),
            answers_digest=answers_digest({}),
        )
        record(
            user,
            "assessment.started",
            assessment,
            organisation=organisation,
            details={
                "catalogue": catalogue.version,
                "level": level,
                "certification_body": certification_body.pk,
            },
        )
    return assessment


def editable_question_ids(snapshot: Snapshot) -> set[str] | None:
    """None when every answer may change; otherwise the question ids that may (the flagged ones
    during clarification, the failed ones in a resubmission)."""
    assessment = snapshot.assessment
    if assessment.state == State.DRAFT:
        return None
    if assessment.state == State.CLARIFICATION:
        return {
            qid for qid, mark in snapshot.marks.items() if mark.verdict == Verdict.NEEDS_INFORMATION
        }
    if assessment.state == State.FAILED:
        return set(scoring.failed_requirements(snapshot.specs, snapshot.values, snapshot.verdicts))
    return set()


@dataclass(frozen=True)
class AnswerChange:
    """One answer to store: the question, the value as sent, and the version the sender saw (0
    for no answer yet; None is refused, as a client that sends none would overwrite blindly)."""

    qid: str
    value: Any
    expected_version: int | None


def save_answer(
    user, access: Access, assessment_id: int, qid: str, raw: Any, expected_version: int | None
) -> Answer:
    """Validate and store one answer. ``expected_version`` is the version the client saw (0 for
    no answer yet); a different stored version means someone else saved first."""
    (answer,) = save_answers(
        user, access, assessment_id, [AnswerChange(qid, raw, expected_version)]
    )
    return answer


def save_answers(
    user, access: Access, assessment_id: int, changes: list[AnswerChange]
) -> list[Answer]:
    """Validate and store answers, all or none, one audit entry per answer that changed. The
    same rules as one answer at a time, checked for each; the cost is a handful of queries
    whatever the number of answers (a spreadsheet or a GRC tool sends them all at once)."""
    with transaction.atomic():
        assessment = _lock(assessment_id)
        _require_answers_open(access, assessment)
        qids = [change.qid for change in changes]
        questions = _questions_named(
            assessment, qids, _("Question %(qid)s is answered twice; send each question once.")
        )
        # A draft (by far the most saves) needs only these answers; the whole snapshot is loaded
        # only when the state limits which answers may change.
        if assessment.state != State.DRAFT:
            editable = editable_question_ids(Snapshot.load(assessment))
            if editable is not None and not set(qids) <= editable:
                raise WrongState(
                    _("Only the answers the assessor flagged can be changed now."),
                    code="not_flagged",
                )
        values = {
            change.qid: _normalised(questions[change.qid], change.value) for change in changes
        }
        current = {
            answer.question_id: answer
            for answer in Answer.objects.filter(
                assessment=assessment, question_id__in=[q.pk for q in questions.values()]
            )
        }
        now = timezone.now()
        created, updated, unchanged, audited = [], [], [], []
        for change in changes:
            question = questions[change.qid]
            existing = current.get(question.pk)
            _check_version(existing, change.expected_version)
            value = values[change.qid]
            if existing is None:
                created.append(
                    Answer(
                        assessment=assessment,
                        question=question,
                        value=value,
                        updated_by=user,
                        updated_at=now,
                    )
                )
                audited.append((question, None, value, 1))
            elif existing.value == value:
                unchanged.append(existing)
            else:
                moved = Answer.objects.filter(pk=existing.pk, version=existing.version).update(
                    value=value, version=existing.version + 1, updated_by=user, updated_at=now
                )
                if not moved:
                    raise Conflict(_("Someone else saved this answer first. Reload and try again."))
                updated.append(question.pk)
                audited.append((question, existing.value, value, existing.version + 1))
        if created:
            try:
                with transaction.atomic():
                    Answer.objects.bulk_create(created)
            except IntegrityError:
                raise Conflict(
                    _("Someone else saved this answer first. Reload and try again.")
                ) from None
        if not audited:
            return unchanged
        assessment.answers_digest = answers_digest(
            dict(Answer.objects.filter(assessment=assessment).values_list("question__qid", "value"))
        )
        assessment.save(update_fields=["answers_digest", "updated_at"])
        record_many(
            user,
            [
                Change(
                    "answer.saved",
                    assessment,
                    organisation=assessment.organisation,
                    details={"question": question.qid, "version": version},
                    before=before,
                    after=after,
                )
                for question, before, after, version in audited
            ],
        )
        # New answers have their ids from the insert where the database returns them; what was
        # updated (a new version and time), or inserted without ids coming back, is read again.
        saved = {answer.question_id: answer for answer in [*unchanged, *created]}
        reread = updated + [answer.question_id for answer in created if answer.pk is None]
        if reread:
            saved.update(
                (answer.question_id, answer)
                for answer in Answer.objects.filter(assessment=assessment, question_id__in=reread)
            )
    return [saved[questions[qid].pk] for qid in qids]


def _questions_named(assessment: Assessment, qids: list[str], twice: str) -> dict[str, Question]:
    """The assessment's catalogue questions by id, each named once (``twice`` says otherwise)."""
    if len(set(qids)) != len(qids):
        duplicate = next(qid for qid in qids if qids.count(qid) > 1)
        raise MamoriError(
            twice % {"qid": duplicate[:20]}, field="question", code="duplicate_question"
        )
    questions = {
        question.qid: question
        for question in Question.objects.select_related("catalogue").filter(
            catalogue_id=assessment.catalogue_id, qid__in=qids
        )
    }
    for qid in qids:
        if qid not in questions:
            raise MamoriError(
                _("There is no question %(qid)s in this catalogue.") % {"qid": qid[:20]},
                field="question",
                code="unknown_question",
            )
    return questions


def _require_answers_open(access: Access, assessment: Assessment) -> None:
    if not permissions.is_editor(access, assessment):
        raise NotAllowed(_("You cannot change this assessment's answers."))
    if permissions.answers_open(assessment):
        return
    if assessment.is_overdue:
        raise WrongState(_("The time to complete this assessment has run out; start a new one."))
    if assessment.feedback_due and assessment.state in (State.CLARIFICATION, State.FAILED):
        raise WrongState(
            _("The window to change answers closed on %(date)s.")
            % {"date": formats.date_format(assessment.feedback_due)}
        )
    raise WrongState(
        _("This assessment is %(state)s and its answers cannot be changed.")
        % {"state": assessment.get_state_display()}
    )


def _normalised(question: Question, raw: Any) -> Any:
    try:
        return question.rules.normalise(raw)
    except AnswerError as exc:
        from mamori.assessments.messages import describe

        # The message names a table's column by its label; the field keeps the key for API
        # clients (e.g. value[0].os).
        field = "value"
        if "row" in exc.params and "column" in exc.params:
            field = f"value[{exc.params['row'] - 1}].{exc.params['column']}"
        raise MamoriError(describe(exc, question.columns), field=field, code=exc.code) from None


def _check_version(existing: Answer | None, expected_version: int | None) -> None:
    current_version = existing.version if existing else 0
    if expected_version is None:
        raise Conflict(
            _("Send the version you edited (currently %(version)s).")
            % {"version": current_version},
            code="version_required",
        )
    if expected_version != current_version:
        raise Conflict(
            _(
                "Someone else saved this answer first (now version %(version)s). "
                "Reload to see their answer, then apply your change again."
            )
            % {"version": current_version}
        )


def sign_declaration(user, access: Access, assessment_id: int, name: str, title: str) -> Assessment:
    name, title = name.strip(), title.strip()
    if not name:
        raise MamoriError(_("Type your full name to sign."), field="name")
    if not title:
        raise MamoriError(_("Give your position on the board."), field="title")
    for field, value in (("name", name), ("title", title)):
        if first_control_character(value) is not None:
            raise MamoriError(validate_single_line.message, field=field)
    with transaction.atomic():
        assessment = _lock(assessment_id)
        _require_role(
            access,
            assessment,
            Role.BOARD_SIGNATORY,
            _("Only a board signatory of the organisation can sign the declaration."),
        )
        if not permissions.can_sign(access, assessment):
            if assessment.state != State.DRAFT:
                raise WrongState(_("The assessment has already been submitted."))
            raise NotAllowed(
                _("Only a board signatory of the organisation can sign the declaration.")
            )
        assessment.declared_by = user
        assessment.declared_name = name[:150]
        assessment.declared_title = title[:150]
        assessment.declared_at = timezone.now()
        assessment.declared_digest = assessment.answers_digest
        assessment.save()
        record(
            user,
            "assessment.declared",
            assessment,
            organisation=assessment.organisation,
            details={
                "name": assessment.declared_name,
                "title": assessment.declared_title,
                "answers_digest": assessment.declared_digest,
            },
        )
    return assessment


def submit(user, access: Access, assessment_id: int) -> Assessment:
    with transaction.atomic():
        assessment = _lock(assessment_id)
        _require_role(
            access,
            assessment,
            Role.APPLICANT_ADMIN,
            _("Only an applicant administrator can submit."),
        )
        if assessment.state != State.DRAFT:
            raise WrongState(
                _("This assessment has already been submitted."), code="already_submitted"
            )
        if not permissions.can_submit(access, assessment):
            raise NotAllowed(_("Only an applicant administrator can submit."))
        if assessment.is_overdue:
            raise WrongState(
                _("The time to complete this assessment has run out; start a new one.")
            )
        snapshot = Snapshot.load(assessment)
        missing = scoring.unanswered(snapshot.specs, snapshot.values)
        if missing:
            raise WrongState(
                _("%(count)s required questions are unanswered, first %(qid)s.")
                % {"count": len(missing), "qid": missing[0]},
                code="incomplete",
            )
        if not assessment.declaration_valid:
            raise WrongState(
                _("A board signatory must sign the declaration for the current answers."),
                code="declaration_missing",
            )
        before = assessment.state
        assessment.state = State.SUBMITTED
        assessment.submitted_at = timezone.now()
        assessment.assessor = assignment.pick_assessor(
            assessment.certification_body_id, assessment.organisation_id
        )
        assessment.save()
        _state_change(
            user, assessment, "assessment.submitted", before, assessor=assessment.assessor_id
        )
        tasks.mail_after_commit(notifications.SUBMITTED, assessment)
    return assessment


def respond_to_clarification(
    user, access: Access, assessment_id: int, message: str = ""
) -> Assessment:
    """Send the assessment back to the assessor, with an optional message about the changes."""
    message = (message or "").strip()
    if len(message) > 4000:
        raise MamoriError(_("Keep the message under 4,000 characters."), field="message")
    # Line breaks and tabs belong in a message; other control characters do not (as in answers).
    if any(ord(char) < 32 and char not in "\n\r\t" for char in message):
        raise MamoriError(
            _("The message contains control characters; remove them."), field="message"
        )
    with transaction.atomic():
        assessment = _lock(assessment_id)
        _require_role(
            access,
            assessment,
            Role.APPLICANT_ADMIN,
            _("Only an applicant administrator can send the clarification back."),
        )
        if assessment.state != State.CLARIFICATION:
            raise WrongState(_("No clarification is open on this assessment."))
        if not assessment.feedback_window_open:
            raise WrongState(
                _(
                    "The clarification window closed on %(date)s; the assessor decides on the answers as they are."
                )
                % {"date": formats.date_format(assessment.feedback_due)}
            )
        if not permissions.can_respond(access, assessment):
            raise NotAllowed(_("Only an applicant administrator can send the clarification back."))
        before = assessment.state
        assessment.state = State.IN_REVIEW
        assessment.feedback_due = None
        assessment.save()
        details = {}
        if message:
            reply = ClarificationReply.objects.create(
                assessment=assessment, round=assessment.round, author=user, message=message
            )
            details = {"reply": reply.pk, "message_digest": chain.digest(message)}
        _state_change(user, assessment, "assessment.clarified", before, **details)
        tasks.mail_after_commit(notifications.CLARIFIED, assessment)
    return assessment


def resubmit(user, access: Access, assessment_id: int) -> Assessment:
    with transaction.atomic():
        assessment = _lock(assessment_id)
        _require_role(
            access,
            assessment,
            Role.APPLICANT_ADMIN,
            _("Only an applicant administrator can resubmit."),
        )
        if assessment.state != State.FAILED:
            raise WrongState(_("Only a failed assessment can be resubmitted."))
        if assessment.pending_appeal is not None:
            raise WrongState(
                _("An appeal against the decision is pending; wait for its outcome."),
                code="appeal_pending",
            )
        if not permissions.can_resubmit(access, assessment):
            if assessment.round > 1:
                raise WrongState(
                    _("This assessment was already resubmitted once; start a new assessment.")
                )
            if not assessment.feedback_window_open:
                raise WrongState(_("The resubmission window has closed; start a new assessment."))
            raise NotAllowed(_("Only an applicant administrator can resubmit."))
        if not assessment.declaration_valid:
            raise WrongState(
                _("A board signatory must sign the declaration for the corrected answers."),
                code="declaration_missing",
            )
        snapshot = Snapshot.load(assessment)
        # Answers the assessor accepted keep their marks; the failed ones are reviewed afresh.
        failed = set(
            scoring.failed_requirements(snapshot.specs, snapshot.values, snapshot.verdicts)
        )
        Mark.objects.bulk_create(
            Mark(
                answer=mark.answer,
                round=assessment.round + 1,
                assessor=mark.assessor,
                verdict=mark.verdict,
                comment=mark.comment,
                answer_version=mark.answer_version,
            )
            for qid, mark in snapshot.marks.items()
            if qid not in failed and mark.verdict == Verdict.COMPLIANT
        )
        before = assessment.state
        assessment.state = State.RESUBMITTED
        assessment.round += 1
        assessment.submitted_at = timezone.now()
        assessment.feedback_due = None
        assessment.save()
        _state_change(user, assessment, "assessment.resubmitted", before)
        tasks.mail_after_commit(notifications.RESUBMITTED, assessment)
    return assessment


def add_attachment(user, access: Access, assessment_id: int, upload, qid: str | None) -> Attachment:
    from mamori.assessments.uploads import inspect_upload

    with transaction.atomic():
        assessment = _lock(assessment_id)
        if not permissions.is_editor(access, assessment):
            raise NotAllowed(_("You cannot add evidence to this assessment."))
        if not permissions.answers_open(assessment):
            raise WrongState(_("Evidence can no longer be added to this assessment."))
        question = None
        if qid:
            question = Question.objects.filter(
                catalogue_id=assessment.catalogue_id, qid=qid
            ).first()
            if question is None:
                raise MamoriError(
                    _("There is no question %(qid)s in this catalogue.") % {"qid": qid[:20]},
                    field="question",
                    code="unknown_question",
                )
        checked = inspect_upload(upload)
        attachment = Attachment(
            assessment=assessment,
            question=question,
            original_name=checked.name,
            content_type=checked.content_type,
            size=checked.size,
            sha256=checked.sha256,
            uploaded_by=user,
        )
        attachment.file.save(checked.name, upload, save=False)
        try:
            attachment.save()
            record(
                user,
                "evidence.added",
                assessment,
                organisation=assessment.organisation,
                details={
                    "attachment": attachment.pk,
                    "sha256": checked.sha256,
                    "size": checked.size,
                    "question": qid or "",
                },
            )
        except Exception:
            attachment.file.delete(save=False)  # no orphan file when the row is not written
            raise
    return attachment


def delete_attachment(user, access: Access, assessment_id: int, attachment_id: int) -> None:
    """Remove an evidence file the assessor has not received yet. The row goes in the
    transaction, with its audit entry; the file leaves the disk once that is committed."""
    with transaction.atomic():
        assessment = _lock(assessment_id)
        if not permissions.is_editor(access, assessment):
            raise NotAllowed(_("You cannot remove evidence from this assessment."))
        attachment = (
            Attachment.objects.select_related("question")
            .filter(pk=attachment_id, assessment=assessment)
            .first()
        )
        if attachment is None:
            raise MamoriError(
                _("There is no such evidence file in this assessment."), code="not_found"
            )
        if not permissions.can_delete_evidence(access, assessment, attachment):
            raise WrongState(
                _("The assessor has received this file; it stays with the submitted answers.")
            )
        record(
            user,
            "evidence.deleted",
            assessment,
            organisation=assessment.organisation,
            details={
                "attachment": attachment.pk,
                "sha256": attachment.sha256,
                "size": attachment.size,
                "question": attachment.question.qid if attachment.question else "",
            },
        )
        storage, name = attachment.file.storage, attachment.file.name
        attachment.delete()
        # robust: the removal is committed; a file that cannot be deleted is logged, not a 500.
        transaction.on_commit(lambda: storage.delete(name), robust=True)


# --- Assessor -------------------------------------------------------------------------------


def _require_body_assessor(access: Access, assessment: Assessment) -> None:
    """403 for anyone who is not an assessor of the reviewing body: no state would ever let them,
    so a 409 about the state would mislead them."""
    if not permissions.is_reviewer(access, assessment):
        raise NotAllowed(_("Only an assessor of the certification body can do this."))


def _require_reviewer(access: Access, assessment: Assessment, check, message) -> None:
    _require_body_assessor(access, assessment)
    # Before the state: a member of the organisation may never mark or decide it, in any state.
    conflicts.require_impartial(access.user_id, assessment.organisation_id)
    if not check(access, assessment):
        if permissions.is_reviewer(access, assessment) and assessment.assessor_id != access.user_id:
            raise NotAllowed(
                _("This submission is assigned to another assessor; take it over first.")
            )
        raise WrongState(message)


def take_over(user, access: Access, assessment_id: int) -> Assessment:
    with transaction.atomic():
        assessment = _lock(assessment_id)
        _require_body_assessor(access, assessment)
        conflicts.require_impartial(user.pk, assessment.organisation_id)
        if not permissions.can_take(access, assessment):
            raise WrongState(_("This submission cannot be taken over now."))
        previous = assessment.assessor_id
        assessment.assessor = user
        assessment.save(update_fields=["assessor", "updated_at"])
        record(
            user,
            "assessment.assigned",
            assessment,
            organisation=assessment.organisation,
            details={"from": previous, "to": user.pk},
        )
    return assessment


def _start_review(user, assessment: Assessment) -> None:
    if assessment.state in (State.SUBMITTED, State.RESUBMITTED):
        before = assessment.state
        assessment.state = State.IN_REVIEW
        assessment.save(update_fields=["state", "updated_at"])
        _state_change(user, assessment, "assessment.review_started", before)


def start_review(user, access: Access, assessment_id: int) -> Assessment:
    with transaction.atomic():
        assessment = _lock(assessment_id)
        _require_reviewer(
            access,
            assessment,
            permissions.can_mark,
            _("This assessment is not waiting for review."),
        )
        _start_review(user, assessment)
    return assessment


@dataclass(frozen=True)
class MarkChange:
    """One verdict on an answer, with the comment the applicant reads (needed unless
    compliant)."""

    qid: str
    verdict: str
    comment: str = ""


def mark_answer(
    user, access: Access, assessment_id: int, qid: str, verdict: str, comment: str
) -> Mark:
    (mark,) = mark_answers(user, access, assessment_id, [MarkChange(qid, verdict, comment)])
    return mark


def mark_answers(user, access: Access, assessment_id: int, changes: list[MarkChange]) -> list[Mark]:
    """Record the assessor's verdicts for this round, all or none, one audit entry per mark, in a
    handful of queries whatever their number."""
    changes = [
        MarkChange(change.qid, change.verdict, _checked_comment(change.verdict, change.comment))
        for change in changes
    ]
    with transaction.atomic():
        assessment = _lock(assessment_id)
        _require_reviewer(
            access,
            assessment,
            permissions.can_mark,
            _("Answers can be marked only while the assessment is under review."),
        )
        qids = [change.qid for change in changes]
        questions = _questions_named(
            assessment, qids, _("Question %(qid)s is marked twice; send each question once.")
        )
        answers = {
            answer.question_id: answer
            for answer in Answer.objects.filter(
                assessment=assessment, question_id__in=[q.pk for q in questions.values()]
            )
        }
        for change in changes:
            question = questions[change.qid]
            answer = answers.get(question.pk)
            if answer is None:
                raise MamoriError(
                    _("Question %(qid)s has no answer to mark.") % {"qid": change.qid},
                    field="question",
                )
            if change.verdict == Verdict.COMPLIANT and question.rules.auto_fails(answer.value):
                raise MamoriError(
                    _("This answer triggers an automatic fail and cannot be marked compliant."),
                    field="verdict",
                    code="auto_fail",
                )
        _start_review(user, assessment)
        existing = {
            mark.answer_id: mark
            for mark in Mark.objects.filter(
                answer_id__in=[a.pk for a in answers.values()], round=assessment.round
            )
        }
        now = timezone.now()
        marks, new = [], []
        for change in changes:
            answer = answers[questions[change.qid].pk]
            mark = existing.get(answer.pk) or Mark(answer=answer, round=assessment.round)
            mark.assessor = user
            mark.verdict = change.verdict
            mark.comment = change.comment
            mark.answer_version = answer.version
            mark.updated_at = now
            (new if mark.pk is None else marks).append(mark)
        fields = ["assessor", "verdict", "comment", "answer_version", "updated_at"]
        if marks:
            Mark.objects.bulk_update(marks, fields)
        if new:
            Mark.objects.bulk_create(new)
        record_many(
            user,
            [
                Change(
                    "answer.marked",
                    assessment,
                    organisation=assessment.organisation,
                    details={
                        "question": change.qid,
                        "verdict": change.verdict,
                        "round": assessment.round,
                        "answer_version": answers[questions[change.qid].pk].version,
                    },
                    after={"comment": change.comment},
                )
                for change in changes
            ],
        )
        by_answer = {mark.answer_id: mark for mark in [*marks, *new]}
        if any(mark.pk is None for mark in new):  # ids not returned by the insert
            by_answer.update(
                (mark.answer_id, mark)
                for mark in Mark.objects.filter(
                    answer_id__in=[m.answer_id for m in new], round=assessment.round
                )
            )
    return [by_answer[answers[questions[qid].pk].pk] for qid in qids]


def _checked_comment(verdict: str, comment: str) -> str:
    comment = (comment or "").strip()
    if verdict not in Verdict.values:
        raise MamoriError(
            _("Choose compliant, non-compliant or needs information."), field="verdict"
        )
    if len(comment) > 4000:
        raise MamoriError(_("Keep the comment under 4,000 characters."), field="comment")
    if verdict != Verdict.COMPLIANT and not comment:
        raise MamoriError(
            _("Say what is wrong or missing, so the applicant can act on it."), field="comment"
        )
    return comment


def mark_remaining_compliant(user, access: Access, assessment_id: int) -> list[str]:
    """Mark compliant, in one go, the answers left unmarked that neither fail automatically nor
    break the catalogue's rule (``scoring.remaining_compliant``). Each goes through
    ``mark_answers``, so each is checked and audited on its own; all or none are saved."""
    with transaction.atomic():
        assessment = _lock(assessment_id)
        _require_reviewer(
            access,
            assessment,
            permissions.can_mark,
            _("Answers can be marked only while the assessment is under review."),
        )
        snapshot = Snapshot.load(assessment)
        qids = scoring.remaining_compliant(snapshot.specs, snapshot.values, snapshot.verdicts)
        mark_answers(
            user, access, assessment.pk, [MarkChange(qid, Verdict.COMPLIANT) for qid in qids]
        )
        if qids:
            record(
                user,
                "answers.remaining_marked_compliant",
                assessment,
                organisation=assessment.organisation,
                details={"round": assessment.round, "questions": qids},
            )
    return qids


def request_clarification(user, access: Access, assessment_id: int) -> Assessment:
    with transaction.atomic():
        assessment = _lock(assessment_id)
        _require_reviewer(
            access,
            assessment,
            permissions.can_decide,
            _("Clarification can be requested only during review."),
        )
        flagged = Mark.objects.filter(
            answer__assessment=assessment, round=assessment.round, verdict=Verdict.NEEDS_INFORMATION
        ).count()
        if not flagged:
            raise WrongState(
                _("Mark at least one answer 'needs information' first."), code="nothing_flagged"
            )
        before = assessment.state
        assessment.state = State.CLARIFICATION
        assessment.feedback_due = add_working_days(
            timezone.localdate(), assessment.catalogue.settings["clarification_working_days"]
        )
        assessment.save()
        _state_change(
            user,
            assessment,
            "assessment.clarification_requested",
            before,
            flagged=flagged,
            due=assessment.feedback_due.isoformat(),
        )
        tasks.mail_after_commit(notifications.CLARIFICATION_REQUESTED, assessment)
    return assessment


def decide(user, access: Access, assessment_id: int, outcome: str, summary: str) -> Decision:
    summary = (summary or "").strip()
    if outcome not in Outcome.values:
        raise MamoriError(_("Choose pass or fail."), field="outcome")
    if len(summary) > 4000:
        raise MamoriError(_("Keep the summary under 4,000 characters."), field="summary")
    with transaction.atomic():
        assessment = _lock(assessment_id)
        _require_body_assessor(access, assessment)
        if (
            assessment.state in (State.PASSED, State.FAILED)
            and Decision.objects.filter(assessment=assessment, round=assessment.round).exists()
        ):
            raise WrongState(_("This round has already been decided."), code="already_decided")
        _require_reviewer(
            access,
            assessment,
            permissions.can_decide,
            _("A decision can be made only during review."),
        )
        snapshot = Snapshot.load(assessment)
        blockers = scoring.pass_blockers(snapshot.specs, snapshot.values, snapshot.verdicts)
        if outcome == Outcome.PASS and blockers:
            first = blockers[0]
            raise WrongState(
                _("It cannot pass yet: %(count)s answers are not marked compliant, first %(qid)s.")
                % {"count": len(blockers), "qid": first.qid},
                code="cannot_pass",
            )
        failed = scoring.failed_requirements(snapshot.specs, snapshot.values, snapshot.verdicts)
        if outcome == Outcome.FAIL and not failed:
            raise WrongState(
                _("To fail it, mark the failing answers non-compliant first."),
                code="nothing_failed",
            )
        decision = Decision.objects.create(
            assessment=assessment,
            round=assessment.round,
            outcome=outcome,
            summary=summary,
            assessor=user,
        )
        before = assessment.state
        assessment.decided_at = decision.decided_at
        if outcome == Outcome.PASS:
            assessment.state = State.PASSED
            assessment.feedback_due = None
        else:
            assessment.state = State.FAILED
            assessment.feedback_due = (
                add_working_days(
                    timezone.localdate(), assessment.catalogue.settings["resubmission_working_days"]
                )
                if assessment.round == 1
                else None
            )
        assessment.save()
        _state_change(
            user, assessment, "assessment.decided", before, outcome=outcome, failed=failed
        )
        if outcome == Outcome.PASS:
            issue_certificate(user, assessment, decision)
        else:
            outbox.enqueue(tasks.render_advice_pdf, decision.pk)
        tasks.mail_after_commit(notifications.DECIDED, assessment)
    return decision
