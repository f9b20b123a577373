"""Pages of the appeal against a failed assessment: the applicant's form and the second assessor's
review. Views translate HTTP to ``mamori.assessments.appeals`` calls and back."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _

from mamori.assessments import appeals, permissions, scoring
from mamori.assessments.forms import AppealDecisionForm, AppealForm
from mamori.assessments.snapshot import Snapshot
from mamori.assessments.views import _access, _get_assessment
from mamori.core.errors import MamoriError, add_to_form


def _status(error: MamoriError) -> int:
    return 422 if error.status == 400 else error.status


@login_required
def appeal(request, pk: int):
    """The applicant's administrator appeals the current fail decision, with grounds. Others who
    can see the assessment read why they cannot (and the POST answers 403 or 409)."""
    access = _access(request)
    assessment = _get_assessment(request, pk)
    form = AppealForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                appeals.lodge(request.user, access, assessment.pk, form.cleaned_data["grounds"])
            except MamoriError as exc:
                form.add_error("grounds" if exc.field == "grounds" else None, exc.message)
                status = _status(exc)
            else:
                messages.success(
                    request,
                    _(
                        "The appeal was lodged. A second assessor of the certification body decides it."
                    ),
                )
                return redirect("assessments:detail", pk=pk)
        else:
            status = 422
    decision = appeals.appealed_decision(assessment)
    refusal = appeals.lodge_refusal(access, assessment)
    return render(
        request,
        "assessments/appeal.html",
        {
            "assessment": assessment,
            "form": form,
            "decision": decision,
            "due": appeals.appeal_due(assessment, decision) if decision else None,
            "can_lodge": refusal is None,
            "refusal": refusal.message if refusal is not None else "",
        },
        status=status,
    )


@login_required
def decide(request, pk: int):
    """The second assessor's review of a pending appeal. Like the review pages, it does not exist
    for the applicant side (404)."""
    access = _access(request)
    assessment = _get_assessment(request, pk)
    if not permissions.is_reviewer(access, assessment):
        raise Http404
    form = AppealDecisionForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                decided = appeals.decide(
                    request.user,
                    access,
                    assessment.pk,
                    form.cleaned_data["outcome"],
                    form.cleaned_data["reason"],
                )
            except MamoriError as exc:
                add_to_form(form, exc)
                status = _status(exc)
            else:
                if decided.status == "overturned":
                    messages.success(
                        request,
                        _("Overturned: the assessment passed and the certificate has been issued."),
                    )
                else:
                    messages.success(request, _("The fail stands. The applicant sees your reason."))
                return redirect("assessments:detail", pk=pk)
        else:
            status = 422
    appeal = assessment.pending_appeal
    failed = []
    automatic = []
    if appeal is not None:
        snapshot = Snapshot.load(assessment)
        by_qid = {question.qid: question for question in snapshot.questions}
        automatic = scoring.auto_failures(snapshot.specs, snapshot.values)
        failed = [
            {
                "question": by_qid[qid],
                "mark": snapshot.marks.get(qid),
                "auto_fail": qid in automatic,
            }
            for qid in scoring.failed_requirements(
                snapshot.specs, snapshot.values, snapshot.verdicts
            )
        ]
    refusal = appeals.decide_refusal(access, assessment)
    return render(
        request,
        "assessments/appeal_decide.html",
        {
            "assessment": assessment,
            "appeal": appeal,
            "form": form,
            "failed": failed,
            "automatic": automatic,
            "can_decide": refusal is None,
            "refusal": refusal.message if refusal is not None else "",
        },
        status=status,
    )
