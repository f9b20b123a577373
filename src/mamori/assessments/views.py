"""Pages of the applicant and assessor flows. Views translate HTTP to service calls and back."""

from __future__ import annotations

from collections import defaultdict
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from mamori.assessments import assignment, permissions, prompts, scoring, services
from mamori.assessments.forms import (
    AttachmentForm,
    ClarificationReplyForm,
    DecisionForm,
    DeclarationForm,
    MarkForm,
    StartAssessmentForm,
    answer_from_post,
    parse_version,
)
from mamori.assessments.models import (
    Assessment,
    AssignmentRule,
    Attachment,
    Decision,
    ReviewAssignment,
    State,
    Verdict,
)
from mamori.assessments.reports import advice_context
from mamori.catalogue.models import Question, Section
from mamori.core.bodylimit import body_limit, upload_limit
from mamori.core.errors import MamoriError, add_to_form
from mamori.organisations.access import Access
from mamori.organisations.models import Organisation

QUEUE_PAGE_SIZE = 50


def _access(request) -> Access:
    return Access.for_request(request)


def _get_assessment(request, pk: int) -> Assessment:
    """The assessment if the user may see it; 404 otherwise, so outsiders learn nothing."""
    return get_object_or_404(
        Assessment.objects.visible_to(_access(request)).select_related(
            "organisation", "catalogue", "certification_body", "assessor"
        ),
        pk=pk,
    )


def _fail(request, error: MamoriError, target: str):
    messages.error(request, error.message)
    return redirect(target)


def _attachments_by_question(assessment: Assessment) -> dict[int | None, list[Attachment]]:
    grouped: dict[int | None, list[Attachment]] = defaultdict(list)
    for attachment in assessment.attachments.select_related("uploaded_by"):
        grouped[attachment.question_id].append(attachment)
    return grouped


def _question_items(
    snapshot: services.Snapshot, questions, access: Access, attachments: dict
) -> list[dict]:
    assessment = snapshot.assessment
    editable_ids = services.editable_question_ids(snapshot)
    may_edit = permissions.can_edit(access, assessment)
    values = snapshot.values
    auto = set(scoring.auto_failures(snapshot.specs, values))
    items = []
    for question in questions:
        answer = snapshot.answers.get(question.qid)
        current_mark = snapshot.marks.get(question.qid)
        items.append(
            {
                "question": question,
                "answer": answer,
                "value": answer.value if answer else None,
                "version": answer.version if answer else 0,
                "mark": current_mark,
                "current_verdict": current_mark.verdict if current_mark else "",
                "editable": may_edit and (editable_ids is None or question.qid in editable_ids),
                "applies": question.rules.applies(values),
                "auto_fail": question.qid in auto,
                "attachments": attachments.get(question.pk, []),
            }
        )
    return items


# --- Applicant pages ----------------------------------------------------------------------------


@login_required
def assessment_list(request):
    access = _access(request)
    assessments = (
        Assessment.objects.visible_to(access)
        .filter(organisation_id__in=access.applicant_organisation_ids)
        .select_related("organisation", "catalogue", "certification_body")
        .order_by("-created_at")
    )
    page = Paginator(assessments, 50).get_page(request.GET.get("page"))
    return render(
        request,
        "assessments/list.html",
        {
            "page": page,
            "can_start": bool(access.organisations_with({"applicant_admin"})),
        },
    )


@login_required
def start(request):
    access = _access(request)
    organisations = Organisation.objects.filter(
        pk__in=access.organisations_with({"applicant_admin"})
    )
    if not organisations.exists():
        raise Http404
    form = StartAssessmentForm(request.POST or None, organisations=organisations)
    if request.method == "POST" and form.is_valid():
        try:
            assessment = services.start_assessment(
                request.user,
                access,
                form.cleaned_data["organisation"],
                form.cleaned_data["certification_body"],
                form.cleaned_data["level"],
            )
        except MamoriError as exc:
            add_to_form(form, exc)
        else:
            messages.success(request, _("Assessment started. Begin with the scope."))
            return redirect("assessments:section", pk=assessment.pk, code="A2")
    return render(
        request, "assessments/start.html", {"form": form}, status=422 if form.errors else 200
    )


@login_required
def detail(request, pk: int):
    access = _access(request)
    assessment = _get_assessment(request, pk)
    snapshot = services.Snapshot.load(assessment)
    values = snapshot.values
    sections = []
    by_section = defaultdict(list)
    for question in snapshot.questions:
        by_section[question.section_id].append(question)
    for section in Section.objects.filter(catalogue_id=assessment.catalogue_id):
        progress = scoring.progress([q.rules for q in by_section[section.pk]], values)
        flagged = sum(
            1
            for q in by_section[section.pk]
            if (mark := snapshot.marks.get(q.qid)) and mark.verdict != "compliant"
        )
        sections.append({"section": section, "progress": progress, "flagged": flagged})
    decisions = list(assessment.decisions.all())
    unanswered = len(scoring.unanswered(snapshot.specs, values))
    replies = list(assessment.clarification_replies.select_related("author"))
    return render(
        request,
        "assessments/detail.html",
        {
            "assessment": assessment,
            "progress": snapshot.progress(),
            "sections": sections,
            "decisions": decisions,
            "replies": replies,
            "reply_form": ClarificationReplyForm(),
            "certificate": getattr(assessment, "certificate", None)
            if assessment.state == State.PASSED
            else None,
            "perm": {
                "edit": permissions.can_edit(access, assessment),
                "sign": permissions.can_sign(access, assessment),
                "sign_now": prompts.awaits_signature(access, assessment, unanswered),
                "submit": permissions.can_submit(access, assessment),
                "respond": permissions.can_respond(access, assessment),
                "resubmit": permissions.can_resubmit(access, assessment),
                "review": permissions.is_reviewer(access, assessment),
                "applicant": permissions.is_applicant(access, assessment),
            },
        },
    )


@login_required
def section(request, pk: int, code: str):
    access = _access(request)
    assessment = _get_assessment(request, pk)
    section_obj = get_object_or_404(Section, catalogue_id=assessment.catalogue_id, code=code)
    snapshot = services.Snapshot.load(assessment)
    questions = [q for q in snapshot.questions if q.section_id == section_obj.pk]
    all_sections = list(Section.objects.filter(catalogue_id=assessment.catalogue_id))
    index = next(i for i, s in enumerate(all_sections) if s.pk == section_obj.pk)
    items = _question_items(snapshot, questions, access, _attachments_by_question(assessment))
    # "Add a row" without JavaScript comes back here asking for one more blank row.
    for item in items:
        if item["question"].qid == request.GET.get("add_row"):
            item["extra_rows"] = 1
    return render(
        request,
        "assessments/section.html",
        {
            "assessment": assessment,
            "section": section_obj,
            "sections": all_sections,
            "previous": all_sections[index - 1] if index > 0 else None,
            "next": all_sections[index + 1] if index + 1 < len(all_sections) else None,
            "items": items,
            "progress": snapshot.progress(),
            "can_edit": permissions.can_edit(access, assessment),
            "is_editor": permissions.is_editor(access, assessment),
        },
    )


@login_required
@require_POST
def answer(request, pk: int, qid: str):
    access = _access(request)
    assessment = _get_assessment(request, pk)
    question = get_object_or_404(
        Question.objects.select_related("section", "catalogue"),
        catalogue_id=assessment.catalogue_id,
        qid=qid,
    )
    raw = answer_from_post(question, request.POST)
    error, status, saved = None, 200, False
    try:
        services.save_answer(
            request.user, access, assessment.pk, qid, raw, parse_version(request.POST)
        )
        saved = True
    except MamoriError as exc:
        error, status = exc.message, (422 if exc.status == 400 else exc.status)
    if not request.htmx:
        section_url = reverse("assessments:section", args=[pk, question.section.code])
        if error:
            messages.error(request, f"{qid}: {error}")
        elif question.kind == "inventory" and "add_row" in request.POST:
            # Without JavaScript the server adds the row: what was typed is saved first.
            return redirect(f"{section_url}?{urlencode({'add_row': qid})}#q-{qid}")
        else:
            messages.success(request, _("Saved %(qid)s.") % {"qid": qid})
        return redirect(f"{section_url}#q-{qid}")
    assessment.refresh_from_db()
    snapshot = services.Snapshot.load(assessment)
    item = _question_items(snapshot, [question], access, {})[0]
    item["error"] = error
    item["saved"] = saved
    # The notes of questions whose relevance depends on this answer change with it.
    dependents = [
        q for q in snapshot.questions if (q.spec.get("applies_if") or {}).get("question") == qid
    ]
    return render(
        request,
        "assessments/_answer_response.html",
        {
            "assessment": assessment,
            "item": item,
            "dependents": _question_items(snapshot, dependents, access, {}),
            "progress": snapshot.progress(),
        },
        status=status,
    )


@body_limit(upload_limit(lambda: settings.EVIDENCE_MAX_BYTES))
@login_required
def evidence(request, pk: int):
    access = _access(request)
    assessment = _get_assessment(request, pk)
    form = AttachmentForm(request.POST or None, request.FILES or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.add_attachment(
                    request.user,
                    access,
                    assessment.pk,
                    form.cleaned_data["file"],
                    form.cleaned_data["question"].strip() or None,
                )
            except MamoriError as exc:
                form.add_error("question" if exc.field == "question" else "file", exc.message)
                status = 422 if exc.status == 400 else exc.status
                if not permissions.can_edit(access, assessment):
                    # The form (and so its errors) is hidden from those who cannot add files.
                    messages.error(request, exc.message)
            else:
                messages.success(request, _("The evidence file was added."))
                return redirect("assessments:evidence", pk=pk)
        else:
            status = 422
    attachments = list(assessment.attachments.select_related("question", "uploaded_by"))
    for attachment in attachments:
        attachment.deletable = permissions.can_delete_evidence(access, assessment, attachment)
    return render(
        request,
        "assessments/evidence.html",
        {
            "assessment": assessment,
            "form": form,
            "attachments": attachments,
            "can_edit": permissions.can_edit(access, assessment),
            "any_deletable": any(a.deletable for a in attachments),
        },
        status=status,
    )


@login_required
@require_POST
def delete_evidence(request, pk: int, attachment_id: int):
    assessment = _get_assessment(request, pk)
    attachment = get_object_or_404(Attachment, pk=attachment_id, assessment=assessment)
    try:
        services.delete_attachment(request.user, _access(request), assessment.pk, attachment.pk)
    except MamoriError as exc:
        return _fail(request, exc, reverse("assessments:evidence", args=[pk]))
    messages.success(
        request, _("The evidence file %(name)s was removed.") % {"name": attachment.original_name}
    )
    return redirect("assessments:evidence", pk=pk)


@login_required
def download_evidence(request, pk: int, attachment_id: int):
    assessment = _get_assessment(request, pk)
    attachment = get_object_or_404(Attachment, pk=attachment_id, assessment=assessment)
    response = FileResponse(
        attachment.file.open("rb"),
        as_attachment=True,
        filename=attachment.original_name,
        content_type="application/octet-stream",
    )
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
def precheck(request, pk: int):
    access = _access(request)
    assessment = _get_assessment(request, pk)
    snapshot = services.Snapshot.load(assessment)
    by_qid = {q.qid: q for q in snapshot.questions}
    specs, values = snapshot.specs, snapshot.values
    return render(
        request,
        "assessments/precheck.html",
        {
            "assessment": assessment,
            "progress": snapshot.progress(),
            "unanswered": [by_qid[qid] for qid in scoring.unanswered(specs, values)],
            "auto_failures": [by_qid[qid] for qid in scoring.auto_failures(specs, values)],
            "warnings": [
                by_qid[qid]
                for qid in scoring.not_compliant(specs, values)
                if qid not in scoring.auto_failures(specs, values)
            ],
            "can_submit": permissions.can_submit(access, assessment),
            "can_sign": permissions.can_sign(access, assessment),
        },
    )


@login_required
def declaration(request, pk: int):
    access = _access(request)
    assessment = _get_assessment(request, pk)
    form = DeclarationForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.sign_declaration(
                    request.user,
                    access,
                    assessment.pk,
                    form.cleaned_data["name"],
                    form.cleaned_data["title"],
                )
            except MamoriError as exc:
                add_to_form(form, exc)
                status = 422 if exc.status == 400 else exc.status
            else:
                messages.success(request, _("The declaration is signed."))
                return redirect("assessments:precheck", pk=pk)
        else:
            status = 422
    return render(
        request,
        "assessments/declaration.html",
        {
            "assessment": assessment,
            "form": form,
            "can_sign": permissions.can_sign(access, assessment),
            "can_submit": permissions.can_submit(access, assessment),
        },
        status=status,
    )


def _action(request, pk: int, action, success: str, target: str = "assessments:detail"):
    access = _access(request)
    assessment = _get_assessment(request, pk)
    try:
        action(request.user, access, assessment.pk)
    except MamoriError as exc:
        return _fail(request, exc, reverse(target, args=[pk]))
    messages.success(request, success)
    return redirect(target, pk=pk)


@login_required
@require_POST
def submit(request, pk: int):
    return _action(
        request, pk, services.submit, _("Submitted. The certification body will review it.")
    )


@login_required
@require_POST
def respond(request, pk: int):
    assessment = _get_assessment(request, pk)
    form = ClarificationReplyForm(request.POST)
    if not form.is_valid():
        return _fail(
            request,
            MamoriError(form.errors["message"][0], field="message"),
            reverse("assessments:detail", args=[pk]),
        )
    try:
        services.respond_to_clarification(
            request.user, _access(request), assessment.pk, form.cleaned_data["message"]
        )
    except MamoriError as exc:
        return _fail(request, exc, reverse("assessments:detail", args=[pk]))
    messages.success(request, _("Sent back to the assessor."))
    return redirect("assessments:detail", pk=pk)


@login_required
@require_POST
def resubmit(request, pk: int):
    return _action(request, pk, services.resubmit, _("Resubmitted for review."))


@login_required
def advice(request, pk: int, round_: int):
    assessment = _get_assessment(request, pk)
    decision = get_object_or_404(Decision, assessment=assessment, round=round_, outcome="fail")
    decision.assessment = assessment
    return render(request, "assessments/advice.html", advice_context(decision))


@login_required
def advice_pdf(request, pk: int, round_: int):
    assessment = _get_assessment(request, pk)
    decision = get_object_or_404(Decision, assessment=assessment, round=round_, outcome="fail")
    english = (request.GET.get("lang") or request.LANGUAGE_CODE or "ja").startswith("en")
    file = decision.report_pdf_en if english else decision.report_pdf
    if not file:
        messages.info(request, _("The PDF is still being prepared; try again in a moment."))
        return redirect("assessments:advice", pk=pk, round_=round_)
    return FileResponse(
        file.open("rb"),
        as_attachment=True,
        # The stored name may carry a storage suffix; the user gets a stable, meaningful one.
        filename=f"advice-{assessment.reference}-r{round_}-{'en' if english else 'ja'}.pdf",
        content_type="application/pdf",
    )


# --- Assessor pages -----------------------------------------------------------------------------


@login_required
def assignment_rules(request):
    """How each certification body's submissions are assigned, changed by its assessors or
    the scheme owner."""
    access = _access(request)
    bodies = list(assignment.bodies_for(access))
    if not bodies:
        raise Http404
    if request.method == "POST":
        body = next(
            (b for b in bodies if str(b.pk) == request.POST.get("certification_body")), None
        )
        if body is None:
            raise Http404
        try:
            setting = assignment.set_rule(
                request.user, access, body.pk, request.POST.get("rule", "")
            )
        except MamoriError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(
                request,
                _("New submissions to %(body)s now go: %(rule)s.")
                % {"body": body, "rule": setting.get_rule_display()},
            )
        return redirect("assessments:assignment")
    settings_by_body = {
        setting.certification_body_id: setting
        for setting in ReviewAssignment.objects.filter(
            certification_body__in=bodies
        ).select_related("updated_by")
    }
    rows = [
        {
            "body": body,
            "setting": settings_by_body.get(body.pk),
            "rule": getattr(settings_by_body.get(body.pk), "rule", AssignmentRule.LEAST_LOADED),
            "can_change": assignment.can_change(access, body.pk),
        }
        for body in bodies
    ]
    return render(
        request,
        "assessments/assignment.html",
        {"rows": rows, "rules": AssignmentRule.choices},
    )


@login_required
def queue(request):
    access = _access(request)
    if not access.is_assessor:
        raise Http404
    show = request.GET.get("show", "mine")
    base = Assessment.objects.visible_to(access).filter(
        certification_body_id__in=access.assessor_body_ids
    )
    counts = base.aggregate(
        mine=Count(
            "pk",
            filter=Q(
                assessor_id=access.user_id,
                state__in=(*permissions.MARKABLE_STATES, State.CLARIFICATION),
            ),
        ),
        unassigned=Count(
            "pk", filter=Q(assessor__isnull=True, state__in=permissions.MARKABLE_STATES)
        ),
    )
    if show == "unassigned":
        rows = base.filter(assessor__isnull=True, state__in=permissions.MARKABLE_STATES)
    elif show == "all":
        rows = base
    else:
        show = "mine"
        rows = base.filter(
            assessor_id=access.user_id,
            state__in=(*permissions.MARKABLE_STATES, State.CLARIFICATION),
        )
    rows = rows.select_related("organisation", "assessor", "catalogue").order_by(
        "submitted_at", "pk"
    )
    page = Paginator(rows, QUEUE_PAGE_SIZE).get_page(request.GET.get("page"))
    rules = [
        {"body": body, "rule": AssignmentRule(assignment.rule_of(body.pk))}
        for body in assignment.bodies_for(access).filter(pk__in=access.assessor_body_ids)
    ]
    return render(
        request,
        "assessments/queue.html",
        {
            "page": page,
            "show": show,
            "counts": counts,
            "rules": rules,
            "all_queued": all(entry["rule"] == AssignmentRule.QUEUE for entry in rules),
        },
    )


# The review page's filters: which answers each shows.
REVIEW_FILTERS = {
    "all": lambda item: True,
    "unmarked": lambda item: item["unmarked"],
    "flagged": lambda item: item["flagged"],
    "auto_fail": lambda item: item["auto_fail"],
}
REVIEW_FILTER_LABELS = {
    "all": gettext_lazy("All answers"),
    "unmarked": gettext_lazy("Unmarked"),
    "flagged": gettext_lazy("Flagged"),
    "auto_fail": gettext_lazy("Auto-fail"),
}


def _review_sections(items: list[dict]) -> list[dict]:
    """Each section of the catalogue with how many of its answers each filter shows."""
    sections: dict[int, dict] = {}
    for item in items:
        section = item["question"].section
        entry = sections.setdefault(
            section.pk, {"section": section, **dict.fromkeys(REVIEW_FILTERS, 0)}
        )
        for name, shows in REVIEW_FILTERS.items():
            entry[name] += shows(item)
    return list(sections.values())


@login_required
def review(request, pk: int):
    access = _access(request)
    assessment = _get_assessment(request, pk)
    if not permissions.is_reviewer(access, assessment):
        raise Http404
    snapshot = services.Snapshot.load(assessment)
    items = _question_items(
        snapshot, snapshot.questions, access, _attachments_by_question(assessment)
    )
    for item in items:
        item["hint"] = item["question"].rules.is_compliant(item["value"])
        item["unmarked"] = (
            item["answer"] is not None
            and item["applies"]
            and item["question"].is_scored
            and item["mark"] is None
        )
        item["flagged"] = item["mark"] is not None and item["mark"].verdict != Verdict.COMPLIANT
    sections = _review_sections(items)
    show = request.GET.get("show", "all")
    if show not in REVIEW_FILTERS:
        show = "all"
    section_code = request.GET.get("section", "")
    if section_code not in {entry["section"].code for entry in sections}:
        section_code = ""
    shown = [
        item
        for item in items
        if REVIEW_FILTERS[show](item)
        and (not section_code or item["question"].section.code == section_code)
    ]
    # The filters count within the section shown, as the list below them does.
    counted = [e for e in sections if not section_code or e["section"].code == section_code]
    filters = [
        {
            "name": name,
            "label": REVIEW_FILTER_LABELS[name],
            "count": sum(entry[name] for entry in counted),
        }
        for name in REVIEW_FILTERS
    ]
    blockers = scoring.pass_blockers(snapshot.specs, snapshot.values, snapshot.verdicts)
    return render(
        request,
        "assessments/review.html",
        {
            "assessment": assessment,
            "items": shown,
            "sections": sections,
            "show": show,
            "section_code": section_code,
            "filters": filters,
            "remaining": len(
                scoring.remaining_compliant(snapshot.specs, snapshot.values, snapshot.verdicts)
            ),
            "blockers": blockers,
            "failed": scoring.failed_requirements(
                snapshot.specs, snapshot.values, snapshot.verdicts
            ),
            "can_mark": permissions.can_mark(access, assessment),
            "can_decide": permissions.can_decide(access, assessment),
            "can_take": permissions.can_take(access, assessment),
            "decision_form": DecisionForm(),
            "decisions": list(assessment.decisions.all()),
            # What the applicant wrote back with its answers to a clarification request.
            "replies": list(assessment.clarification_replies.select_related("author")),
        },
    )


@login_required
@require_POST
def mark(request, pk: int, qid: str):
    access = _access(request)
    assessment = _get_assessment(request, pk)
    if not permissions.is_reviewer(access, assessment):
        raise Http404
    question = get_object_or_404(
        Question.objects.select_related("section", "catalogue"),
        catalogue_id=assessment.catalogue_id,
        qid=qid,
    )
    form = MarkForm(request.POST)
    error, status = None, 200
    if form.is_valid():
        try:
            services.mark_answer(
                request.user,
                access,
                assessment.pk,
                qid,
                form.cleaned_data["verdict"],
                form.cleaned_data["comment"],
            )
        except MamoriError as exc:
            error, status = exc.message, (422 if exc.status == 400 else exc.status)
    else:
        # Name the field at fault: a too-long comment is not a missing verdict.
        error = _("Choose a verdict.") if "verdict" in form.errors else form.errors["comment"][0]
        status = 422
    if not request.htmx:
        if error:
            messages.error(request, f"{qid}: {error}")
        return redirect(reverse("assessments:review", args=[pk]) + f"#q-{qid}")
    assessment.refresh_from_db()
    snapshot = services.Snapshot.load(assessment)
    item = _question_items(snapshot, [question], access, _attachments_by_question(assessment))[0]
    item["hint"] = question.rules.is_compliant(item["value"])
    item["error"] = error
    item["saved"] = error is None
    if error:
        item["posted"] = {
            "verdict": request.POST.get("verdict", ""),
            "comment": request.POST.get("comment", ""),
        }
    return render(
        request,
        "assessments/_review_item.html",
        {
            "assessment": assessment,
            "item": item,
            "can_mark": permissions.can_mark(access, assessment),
        },
        status=status,
    )


@login_required
@require_POST
def mark_remaining(request, pk: int):
    access = _access(request)
    assessment = _get_assessment(request, pk)
    if not permissions.is_reviewer(access, assessment):
        raise Http404
    target = reverse("assessments:review", args=[pk])
    try:
        marked = services.mark_remaining_compliant(request.user, access, assessment.pk)
    except MamoriError as exc:
        return _fail(request, exc, target)
    if marked:
        messages.success(
            request,
            ngettext(
                "Marked %(count)s answer compliant.",
                "Marked %(count)s answers compliant.",
                len(marked),
            )
            % {"count": len(marked)},
        )
    else:
        messages.info(request, _("No answer was left to mark compliant."))
    return redirect(target)


@login_required
@require_POST
def take(request, pk: int):
    return _action(
        request, pk, services.take_over, _("You are now the assessor."), "assessments:review"
    )


@login_required
@require_POST
def start_review(request, pk: int):
    return _action(request, pk, services.start_review, _("Review started."), "assessments:review")


@login_required
@require_POST
def clarify(request, pk: int):
    return _action(
        request,
        pk,
        services.request_clarification,
        _("Returned to the applicant for clarification."),
        "assessments:review",
    )


@login_required
@require_POST
def decide(request, pk: int):
    access = _access(request)
    assessment = _get_assessment(request, pk)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        # Name the field at fault: a too-long summary is not a missing outcome.
        messages.error(
            request,
            _("Choose pass or fail.") if "outcome" in form.errors else form.errors["summary"][0],
        )
        return redirect("assessments:review", pk=pk)
    try:
        decision = services.decide(
            request.user,
            access,
            assessment.pk,
            form.cleaned_data["outcome"],
            form.cleaned_data["summary"],
        )
    except MamoriError as exc:
        return _fail(request, exc, reverse("assessments:review", args=[pk]))
    if decision.outcome == "pass":
        messages.success(request, _("Passed. The certificate has been issued."))
    else:
        messages.success(request, _("Failed. The applicant receives the advice report."))
    return redirect("assessments:detail", pk=pk)
