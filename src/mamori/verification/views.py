"""Host pages: the list, one host's posture and history, the difference between two collections.

Views translate HTTP to queries and service calls; outsiders get 404 (``Host.objects.visible_to``).
"""

from __future__ import annotations

import json
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from mamori.catalogue.models import pick
from mamori.core.choices import CONTROL_LABELS
from mamori.earlywarning.overdue import overdue_alerts
from mamori.organisations.access import Access
from mamori.organisations.models import Organisation
from mamori.verification import agent_file, diff, permissions, services
from mamori.verification.evaluation import page_finding
from mamori.verification.forms import ScopeForm
from mamori.verification.models import CONTROLS, Evaluation, Evidence, Host, Verdict

PAGE_SIZE = 50
HISTORY_SIZE = 50
VERDICT_CSS = {"pass": "passed", "fail": "failed", "unknown": "warn"}
# Pass and fail are told by a sign as well as by colour.
VERDICT_SYMBOL = {"pass": "✓", "fail": "✕", "unknown": "?"}
SEVERITY_LABELS = {
    "critical": gettext_lazy("Critical"),
    "important": gettext_lazy("High"),
    "high": gettext_lazy("High"),
    "medium": gettext_lazy("Medium"),
    "moderate": gettext_lazy("Medium"),
    "low": gettext_lazy("Low"),
    "negligible": gettext_lazy("Low"),
    "info": gettext_lazy("Information"),
}
STATUS_ORDER = {"fail": 0, "unknown": 1}
SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "moderate": 2, "low": 3}


def _visible_hosts(request):
    return Host.objects.visible_to(Access.for_request(request)).select_related(
        "organisation", "latest_evaluation"
    )


def _get_host(request, pk: int) -> Host:
    return get_object_or_404(_visible_hosts(request), pk=pk)


def _verdict_label(verdict: str | None) -> str:
    return Verdict(verdict).label if verdict in Verdict.values else _("Not evaluated")


def control_badges(evaluation: Evaluation | None) -> list[dict]:
    """The five verdicts of an evaluation, ready for the badges ("—" when never evaluated)."""
    return [
        {
            "control": control,
            "label": CONTROL_LABELS[control],
            "verdict": getattr(evaluation, control, None),
            "verdict_label": _verdict_label(getattr(evaluation, control, None)),
            "symbol": VERDICT_SYMBOL.get(getattr(evaluation, control, None), "—"),
            "css": VERDICT_CSS.get(getattr(evaluation, control, None), ""),
        }
        for control in CONTROLS
    ]


def _localised(value) -> str:
    """Evaluation texts are strings, or ``{"ja": ..., "en": ...}`` mappings."""
    if isinstance(value, dict):
        return pick(value)
    return "" if value is None else str(value)


def _findings(result: dict) -> list[dict]:
    """Failing and unknown findings, failures first, most severe first."""
    items = [
        item
        for item in result.get("findings") or []
        if isinstance(item, dict) and item.get("status") in STATUS_ORDER
    ]
    items.sort(
        key=lambda item: (
            STATUS_ORDER[item["status"]],
            SEVERITY_ORDER.get(str(item.get("severity") or "").lower(), 9),
            str(item.get("check") or ""),
        )
    )
    language = "en" if (get_language() or "ja").startswith("en") else "ja"
    findings = []
    for item in items:
        shown = page_finding({**item, "detail": _localised(item.get("detail"))}, language)
        findings.append(
            {
                "check": item.get("check") or "",
                "control": CONTROL_LABELS.get(item.get("control"), item.get("control") or ""),
                "status": item["status"],
                "status_label": _verdict_label(item["status"]),
                "symbol": VERDICT_SYMBOL[item["status"]],
                "css": VERDICT_CSS[item["status"]],
                "severity": severity_label(item.get("severity")),
                "title": _localised(item.get("title")),
                "summary": shown["summary"],
                "explanation": shown["explanation"],
                "vulnerabilities": shown["vulnerabilities"],
                "remediation": _localised(item.get("remediation")),
                "questions": [q for q in item.get("questions") or [] if isinstance(q, str)],
            }
        )
    return findings


def severity_label(severity) -> str:
    """A severity as the page's language says it; a vendor's own word is shown as it came."""
    text = str(severity or "").strip()
    label = SEVERITY_LABELS.get(text.lower())
    return str(label) if label is not None else text


def _overdue(result: dict) -> list[dict]:
    items = [
        {**item, "severity_label": severity_label(item.get("severity"))}
        for item in result.get("vulnerabilities") or []
        if isinstance(item, dict) and item.get("overdue")
    ]
    items.sort(
        key=lambda item: (
            not item.get("kev"),
            -(item.get("days_since_fix") or 0),
            str(item.get("package") or ""),
            str(item.get("advisory") or ""),
        )
    )
    return items


def _history(host: Host, limit: int = HISTORY_SIZE) -> list[Evidence]:
    collections = services.with_newest_evaluations(
        host.evidence.defer("payload").order_by("-collected_at", "-pk")[:limit]
    )
    for evidence in collections:
        evidence.badges = control_badges(evidence.newest_evaluation)
    return collections


def _int(value) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 2**62 else None


@login_required
def host_list(request):
    access = Access.for_request(request)
    hosts = _visible_hosts(request).defer(
        "latest_evaluation__result", "latest_evaluation__findings_en"
    )
    failing = request.GET.get("failing", "")
    if failing in CONTROLS:
        hosts = hosts.filter(**{f"latest_evaluation__{failing}": Verdict.FAIL})
    else:
        failing = ""
    organisation_id = _int(request.GET.get("organisation"))
    if organisation_id is not None:
        hosts = hosts.filter(organisation_id=organisation_id)
    hosts = hosts.order_by("organisation__name_ja", "hostname", "pk")
    page = Paginator(hosts, PAGE_SIZE).get_page(request.GET.get("page"))
    for host in page.object_list:
        host.badges = control_badges(host.latest_evaluation)
    organisations = list(
        Organisation.objects.filter(
            pk__in=_visible_hosts(request).values("organisation_id")
        ).order_by("name_ja")
    )
    # Read only by the empty state, which tells members how to deploy the agent.
    member_of = Organisation.objects.filter(pk__in=access.organisation_ids).order_by("name_ja")
    return render(
        request,
        "verification/list.html",
        {
            "page": page,
            "failing": failing,
            "organisation_id": organisation_id,
            "organisations": organisations,
            "controls": [(control, CONTROL_LABELS[control]) for control in CONTROLS],
            "filtered": bool(failing or organisation_id),
            "member_of": member_of,
            "server_url": request.build_absolute_uri("/"),
            "can_deploy_agent": permissions.can_deploy_agent(access),
        },
    )


@login_required
def agent_download(request):
    """The agent as one file (built from this server's own agent, see ``agent_file``)."""
    if not permissions.can_deploy_agent(Access.for_request(request)):
        raise Http404
    path = agent_file.agent_pyz(Path(settings.VAR_DIR) / "agent")
    response = FileResponse(
        path.open("rb"),
        as_attachment=True,
        filename=agent_file.DOWNLOAD_NAME,
        content_type="application/octet-stream",
    )
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    return response


@login_required
def host_detail(request, pk: int):
    access = Access.for_request(request)
    host = _get_host(request, pk)
    evaluation = host.latest_evaluation
    result = evaluation.localised_result(get_language()) if evaluation is not None else {}
    return render(
        request,
        "verification/detail.html",
        {
            "host": host,
            "evaluation": evaluation,
            "badges": control_badges(evaluation),
            "findings": _findings(result),
            "overdue": _overdue(result),
            "history": _history(host),
            "verdict_changes": _verdict_changes(evaluation),
            "can_change_scope": permissions.can_change_scope(access, host),
            # Early-warning alerts about this host past their deadline (members: which ones;
            # assessors: how many).
            "overdue_alerts": overdue_alerts(access, host.organisation_id, host_id=host.pk),
        },
    )


def _verdict_changes(evaluation, limit: int = 20) -> list:
    """How new advisories changed the latest evaluation's verdicts, newest first."""
    if evaluation is None:
        return []
    changes = list(evaluation.verdict_changes.order_by("-changed_at", "-pk")[:limit])
    for change in changes:
        change.control_label = CONTROL_LABELS.get(change.control, change.control)
    return changes


@login_required
def host_diff(request, pk: int):
    host = _get_host(request, pk)
    history = _history(host, limit=100)
    from_id, to_id = _int(request.GET.get("from")), _int(request.GET.get("to"))
    if from_id is None and to_id is None and len(history) >= 2:
        # Without a choice: what changed in the newest collection.
        from_id, to_id = history[1].pk, history[0].pk
    context = {"host": host, "history": history, "from_id": from_id, "to_id": to_id}
    if from_id is None or to_id is None:
        if request.GET.get("from") or request.GET.get("to"):
            raise Http404
        return render(request, "verification/diff.html", {**context, "difference": None})
    pair = {
        evidence.pk: evidence
        for evidence in Evidence.objects.filter(host=host, pk__in=(from_id, to_id))
    }
    if from_id not in pair or to_id not in pair:
        raise Http404
    old, new = services.with_newest_evaluations([pair[from_id], pair[to_id]])
    results = {
        evaluation.pk: evaluation.localised_result(get_language())
        for evaluation in Evaluation.objects.filter(
            pk__in=[e.newest_evaluation.pk for e in (old, new) if e.newest_evaluation]
        )
    }
    old_result, new_result = (
        results.get(e.newest_evaluation.pk) if e.newest_evaluation else None for e in (old, new)
    )
    difference = diff.diff_collections(old.payload, new.payload, old_result, new_result)
    for change in difference["controls"]:
        change["label"] = CONTROL_LABELS[change["control"]]
        change["old_label"] = _verdict_label(change["old"])
        change["new_label"] = _verdict_label(change["new"])
        change["old_css"] = VERDICT_CSS.get(change["old"], "")
        change["new_css"] = VERDICT_CSS.get(change["new"], "")
        change["old_symbol"] = VERDICT_SYMBOL.get(change["old"], "—")
        change["new_symbol"] = VERDICT_SYMBOL.get(change["new"], "—")
    for vulnerabilities in difference["vulnerabilities"].values():
        for vulnerability in vulnerabilities:
            vulnerability["severity_label"] = severity_label(vulnerability.get("severity"))
    for change in difference["findings"]:
        change["title"] = _localised(change["title"])
        change["control_label"] = CONTROL_LABELS.get(change["control"], change["control"] or "")
    return render(
        request,
        "verification/diff.html",
        {
            **context,
            "old": old,
            "new": new,
            "difference": difference,
            "unchanged": diff.is_empty(difference),
        },
    )


@login_required
def evidence_download(request, pk: int, evidence_id: int):
    """One collection exactly as stored, as a JSON file (never rendered inline)."""
    host = _get_host(request, pk)
    evidence = get_object_or_404(Evidence, host=host, pk=evidence_id)
    body = json.dumps(evidence.payload, ensure_ascii=False, indent=2, sort_keys=True)
    response = HttpResponse(body.encode("utf-8"), content_type="application/json; charset=utf-8")
    stamp = evidence.collected_at.strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = (
        f'attachment; filename="evidence-{host.pk}-{evidence.pk}-{stamp}.json"'
    )
    return response


@login_required
@require_POST
def host_scope(request, pk: int):
    access = Access.for_request(request)
    host = _get_host(request, pk)
    if not permissions.can_change_scope(access, host):
        messages.error(
            request, _("Only the organisation's administrators and contributors set the scope.")
        )
        return redirect("verification:detail", pk=host.pk)
    form = ScopeForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose whether the host is in scope."))
        return redirect("verification:detail", pk=host.pk)
    services.set_in_scope(request.user, host.pk, form.cleaned_data["in_scope"])
    if form.cleaned_data["in_scope"]:
        messages.success(request, _("The host is in scope."))
    else:
        messages.success(request, _("The host is out of scope."))
    return redirect("verification:detail", pk=host.pk)
