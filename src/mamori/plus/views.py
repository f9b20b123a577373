"""Pages of the Plus audit: the applicant's (request, devices, results) and the assessor's
(queue, frame and kinds, sample, test cases, decision). Views translate HTTP to service calls."""

from __future__ import annotations

from collections import defaultdict

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from mamori.catalogue.models import pick
from mamori.core.bodylimit import body_limit, upload_limit
from mamori.core.errors import MamoriError, add_to_form
from mamori.organisations.access import Access
from mamori.organisations.models import Role
from mamori.plus import permissions, services, testcases, texts
from mamori.plus.forms import (
    AddressesForm,
    DecisionForm,
    DeviceCheckForm,
    DeviceForm,
    RequestForm,
    TestCaseForm,
    kinds_from_post,
)
from mamori.plus.models import (
    AuditState,
    Code,
    DeviceCheck,
    DeviceKind,
    PlusAudit,
    Result,
    SampleRound,
    TestAttachment,
    TestCase,
)

PAGE_SIZE = 50
RESULT_CSS = {"pass": "passed", "fail": "failed", "unknown": "warn", "pending": ""}


def _access(request) -> Access:
    return Access.for_request(request)


def _get_audit(request, pk: int) -> PlusAudit:
    """The audit if the user may see it; 404 otherwise, so outsiders learn nothing."""
    return get_object_or_404(
        PlusAudit.objects.visible_to(_access(request)).select_related(
            "organisation", "certification_body", "assessor", "base_certificate", "catalogue"
        ),
        pk=pk,
    )


def _status(exc: MamoriError) -> int:
    return 422 if exc.status == 400 else exc.status


# --- Lists and requests -------------------------------------------------------------------------


@login_required
def audit_list(request):
    access = _access(request)
    audits = PlusAudit.objects.visible_to(access).select_related(
        "organisation", "assessor", "base_certificate"
    )
    show = request.GET.get("show", "")
    if access.is_assessor:
        body = Q(certification_body_id__in=access.assessor_body_ids)
        active = Q(state__in=(AuditState.OPEN, AuditState.RETEST))
        if show == "mine":
            audits = audits.filter(body & active, assessor_id=access.user_id)
        elif show == "unassigned":
            audits = audits.filter(body & active, assessor__isnull=True)
    page = Paginator(audits.order_by("deadline", "pk"), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "plus/list.html",
        {
            "page": page,
            "show": show,
            "is_assessor": access.is_assessor,
            "can_request": bool(services.eligible_certificates(access)),
        },
    )


@login_required
def request_audit(request):
    access = _access(request)
    if not (access.organisations_with({Role.APPLICANT_ADMIN}) or access.is_assessor):
        raise Http404
    certificates = services.eligible_certificates(access)
    initial = {}
    wanted = request.GET.get("certificate", "")
    for certificate in certificates:
        if certificate.number == wanted:
            initial["certificate"] = str(certificate.pk)
    form = RequestForm(request.POST or None, certificates=certificates, initial=initial)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                audit = services.request_audit(
                    request.user, access, form.cleaned_data["certificate"].pk
                )
            except MamoriError as exc:
                form.add_error("certificate", exc.message)
                status = _status(exc)
            else:
                messages.success(
                    request,
                    _("The Plus audit has started. List the devices without the agent next."),
                )
                return redirect("plus:detail", pk=audit.pk)
        else:
            status = 422
    return render(
        request,
        "plus/request.html",
        {"form": form, "certificates": certificates},
        status=status,
    )


# --- The audit ----------------------------------------------------------------------------------


def _finding_rows(check: DeviceCheck) -> list[dict]:
    return [
        {
            "check": item.get("check", ""),
            "status": item.get("status", ""),
            "title": pick(item.get("title")),
            "detail": pick(item.get("detail")),
            "remediation": pick(item.get("remediation")),
        }
        for item in (check.facts or {}).get("findings", [])
        if isinstance(item, dict)
    ]


def _round_view(sample_round: SampleRound, audit: PlusAudit) -> dict:
    sampled = list(
        sample_round.sampled.select_related("device__host").order_by(
            "kind", "os_build", "device__name", "pk"
        )
    )
    checks: dict[int, dict[str, DeviceCheck]] = defaultdict(dict)
    for check in DeviceCheck.objects.filter(sampled__round=sample_round).select_related(
        "recorded_by"
    ):
        checks[check.sampled_id][check.code] = check
    devices = []
    for item in sampled:
        cells = []
        for code in testcases.EVIDENCE_CASES:
            check = checks[item.pk].get(code)
            cells.append(
                {
                    "code": code,
                    "check": check,
                    "status": check.status if check else "pending",
                    "label": Result(check.status).label if check else Result.PENDING.label,
                    "css": RESULT_CSS.get(check.status if check else "pending", ""),
                    "findings": _finding_rows(check) if check else [],
                    "facts": check.facts if check else {},
                }
            )
        devices.append({"item": item, "cells": cells})
    cases = list(sample_round.test_cases.prefetch_related("attachments"))
    failed = [case for case in cases if case.result == Result.FAIL]
    return {
        "round": sample_round,
        "devices": devices,
        "cases": [
            {
                "case": case,
                "css": RESULT_CSS.get(case.result, ""),
                "purpose": texts.PURPOSE[case.code],
                "remedy": texts.REMEDY[case.code],
            }
            for case in cases
        ],
        "failed": [{"case": case, "remedy": texts.REMEDY[case.code]} for case in failed],
        "open": not sample_round.outcome and audit.state == AuditState.OPEN,
        "builds": _builds(sampled),
    }


def _builds(sampled) -> list[dict]:
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for item in sampled:
        counts[(DeviceKind(item.kind).label, item.os_build)] += 1
    return [
        {"kind": kind, "build": build, "count": count}
        for (kind, build), count in sorted(counts.items())
    ]


@login_required
def detail(request, pk: int):
    access = _access(request)
    audit = _get_audit(request, pk)
    rows = services.frame(audit)
    sampled_devices = set(
        audit.devices.filter(samplings__isnull=False).values_list("pk", flat=True)
    )
    rounds = [
        _round_view(sample_round, audit)
        for sample_round in audit.rounds.select_related("drawn_by", "decided_by").order_by(
            "-number"
        )
    ]
    can_test = permissions.can_test(access, audit)
    current = audit.current_round
    # A sample is drawn first, after a failed round, or again when one went unused too long.
    can_draw = can_test and (
        current is None
        or audit.state == AuditState.RETEST
        or (current.testing_started_at is None and timezone.localdate() > current.test_by)
    )
    return render(
        request,
        "plus/detail.html",
        {
            "audit": audit,
            "frame": rows,
            "sampled_devices": sampled_devices,
            "unconfirmed": sum(1 for row in rows if not row.confirmed),
            "rounds": rounds,
            "kinds": DeviceKind.choices,
            "addresses": [line for line in audit.public_addresses.splitlines() if line],
            "address_form": AddressesForm(initial={"public_addresses": audit.public_addresses}),
            "device_form": DeviceForm(),
            "decision_form": DecisionForm(),
            "evidence_days": services.Timing.of(audit.catalogue).evidence_days,
            "perm": {
                "applicant": permissions.is_applicant(access, audit),
                "edit_frame": permissions.can_edit_frame(access, audit),
                "test": can_test,
                "draw": can_draw,
                "take": permissions.can_take(access, audit),
                "reviewer": permissions.is_reviewer(access, audit),
            },
        },
    )


def _act(request, pk: int, action, success: str, *args):
    """Run a POST action and go back to the audit with the outcome as a message."""
    access = _access(request)
    audit = _get_audit(request, pk)
    try:
        action(request.user, access, audit.pk, *args)
    except MamoriError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, success)
    return redirect("plus:detail", pk=pk)


@login_required
@require_POST
def take(request, pk: int):
    return _act(request, pk, services.take_over, _("You are now the assessor of this Plus audit."))


@login_required
@require_POST
def addresses(request, pk: int):
    form = AddressesForm(request.POST)
    if not form.is_valid():
        _get_audit(request, pk)
        messages.error(request, form.errors["public_addresses"][0])
        return redirect("plus:detail", pk=pk)
    return _act(
        request,
        pk,
        services.set_public_addresses,
        _("The public addresses were saved."),
        form.cleaned_data["public_addresses"],
    )


@login_required
@require_POST
def add_device(request, pk: int):
    form = DeviceForm(request.POST)
    if not form.is_valid():
        _get_audit(request, pk)
        field, errors = next(iter(form.errors.items()))
        label = form.fields[field].label if field in form.fields else ""
        messages.error(request, f"{label}: {errors[0]}" if label else errors[0])
        return redirect("plus:detail", pk=pk)
    return _act(
        request,
        pk,
        services.add_device,
        _("The device was added to the frame."),
        form.cleaned_data["name"],
        form.cleaned_data["os_build"],
        form.cleaned_data["kind"],
    )


@login_required
@require_POST
def remove_device(request, pk: int, device_id: int):
    return _act(
        request, pk, services.remove_device, _("The device was removed from the frame."), device_id
    )


@login_required
@require_POST
def kinds(request, pk: int):
    return _act(
        request,
        pk,
        services.confirm_kinds,
        _("The kinds of the devices are confirmed."),
        kinds_from_post(request.POST),
    )


@login_required
@require_POST
def draw(request, pk: int):
    return _act(request, pk, services.draw_sample, _("A random sample was drawn and recorded."))


@login_required
@require_POST
def fill(request, pk: int):
    return _act(
        request,
        pk,
        services.fill_from_evidence,
        _("TC2, TC3 and TC7 were filled from the sampled hosts' latest evidence."),
    )


@login_required
@require_POST
def device_check(request, pk: int, sampled_id: int):
    form = DeviceCheckForm(request.POST)
    if not form.is_valid():
        _get_audit(request, pk)
        messages.error(
            request, _("Choose pass or fail, and keep the texts under 4,000 characters.")
        )
        return redirect("plus:detail", pk=pk)
    data = form.cleaned_data
    return _act(
        request,
        pk,
        services.record_device_check,
        _("The result was recorded."),
        sampled_id,
        data["code"],
        data["status"],
        data["notes"],
        data["reason"],
    )


@login_required
@require_POST
def decide(request, pk: int):
    form = DecisionForm(request.POST)
    if not form.is_valid():
        _get_audit(request, pk)
        messages.error(
            request,
            _("Choose pass or fail.") if "outcome" in form.errors else form.errors["summary"][0],
        )
        return redirect("plus:detail", pk=pk)
    access = _access(request)
    audit = _get_audit(request, pk)
    try:
        sample_round = services.decide(
            request.user,
            access,
            audit.pk,
            form.cleaned_data["outcome"],
            form.cleaned_data["summary"],
        )
    except MamoriError as exc:
        messages.error(request, exc.message)
    else:
        if sample_round.outcome == "pass":
            messages.success(request, _("Passed. The Cyber Essentials Plus certificate is issued."))
        elif sample_round.number == 1:
            messages.success(
                request,
                _("Failed. The applicant fixes the findings, then a second sample is tested."),
            )
        else:
            messages.success(request, _("Failed. The Plus audit is closed."))
    return redirect("plus:detail", pk=pk)


@body_limit(upload_limit(lambda: settings.EVIDENCE_MAX_BYTES))
@login_required
def test_case(request, pk: int, code: str):
    """One test case of the current (or a past) round: its result, notes and files for everyone
    who sees the audit; the form for the assigned assessor (TC1, TC4, TC5, TC6 results, files
    for any test case)."""
    access = _access(request)
    audit = _get_audit(request, pk)
    if code not in Code.values:
        raise Http404
    sample_round = audit.current_round
    if sample_round is None:
        raise Http404
    case = get_object_or_404(TestCase, round=sample_round, code=code)
    can_test = permissions.can_test(access, audit) and not sample_round.outcome
    form = TestCaseForm(
        request.POST or None,
        request.FILES or None,
        initial={
            "result": case.result if case.result in ("pass", "fail") else None,
            "notes": case.notes,
        },
    )
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                if code in testcases.ASSESSOR_CASES:
                    services.record_test_case(
                        request.user,
                        access,
                        audit.pk,
                        code,
                        data["result"],
                        data["notes"],
                        data["file"],
                    )
                elif data["file"] is not None:
                    services.add_test_attachment(request.user, access, audit.pk, code, data["file"])
                else:
                    raise MamoriError(
                        _("TC2, TC3 and TC7 are recorded per device on the audit page."),
                        field="result",
                    )
            except MamoriError as exc:
                add_to_form(form, exc)
                status = _status(exc)
                if not can_test:
                    messages.error(request, exc.message)
            else:
                messages.success(request, _("The test case was recorded."))
                return redirect("plus:detail", pk=pk)
        else:
            status = 422
    return render(
        request,
        "plus/test_case.html",
        {
            "audit": audit,
            "round": sample_round,
            "case": case,
            "css": RESULT_CSS.get(case.result, ""),
            "purpose": texts.PURPOSE[code],
            "remedy": texts.REMEDY[code],
            "form": form,
            "can_test": can_test,
            "from_evidence": code in testcases.EVIDENCE_CASES,
        },
        status=status,
    )


@login_required
def download(request, pk: int, attachment_id: int):
    audit = _get_audit(request, pk)
    attachment = get_object_or_404(TestAttachment, pk=attachment_id, test_case__round__audit=audit)
    response = FileResponse(
        attachment.file.open("rb"),
        as_attachment=True,
        filename=attachment.original_name,
        content_type="application/octet-stream",
    )
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
