"""Evaluating evidence against the five controls and storing the evaluation: shared by the
upload (``ingest``) and by the full re-evaluation of a re-match (``rematch``).

The thresholds come from the catalogue version that applies to the organisation; the slow part
(``evaluate_evidence``) runs outside any transaction, ``store_evaluation`` inside the caller's.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

from mamori.core.bulk import insert_rows
from mamori.core.errors import MamoriError
from mamori.verification.models import (
    CONTROLS,
    CheckResult,
    Evaluation,
    Evidence,
    Verdict,
    Vulnerability,
)

log = logging.getLogger(__name__)


class EvaluationFailed(MamoriError):
    status = 422
    code = "evaluation_failed"


@dataclass(frozen=True)
class CatalogueSettings:
    version: str
    values: Mapping[str, Any]


def catalogue_settings_for(organisation_id: int, today: dt.date | None = None) -> CatalogueSettings:
    """The thresholds evidence is judged by: those of the catalogue version of the
    organisation's current certificate, else of its newest assessment, else the catalogue in
    force (the newest loaded), else the bundled catalogue file's."""
    from mamori.assessments.models import Assessment
    from mamori.catalogue.models import Catalogue
    from mamori.catalogue.services import current_catalogue
    from mamori.certificates.models import Certificate

    today = today or timezone.localdate()
    catalogue = None
    version = (
        Certificate.objects.currently_valid(today)
        .filter(organisation_id=organisation_id)
        .order_by("-issued_on", "-pk")
        .values_list("catalogue_version", flat=True)
        .first()
    )
    if version:
        catalogue = Catalogue.objects.filter(version=version).first()
    if catalogue is None:
        assessment = (
            Assessment.objects.filter(organisation_id=organisation_id)
            .select_related("catalogue")
            .order_by("-created_at", "-pk")
            .first()
        )
        catalogue = assessment.catalogue if assessment else None
    if catalogue is None:
        catalogue = (
            current_catalogue(today) or Catalogue.objects.order_by("-valid_from", "-pk").first()
        )
    if catalogue is not None:
        return CatalogueSettings(catalogue.version, dict(catalogue.settings))
    return bundled_settings()


def bundled_settings() -> CatalogueSettings:
    """The thresholds of the newest bundled catalogue file (no catalogue loaded yet)."""
    from mamori.catalogue.services import parse_bundled

    bundled = parse_bundled()
    if not bundled:
        return CatalogueSettings("", {})
    newest = bundled[-1]
    return CatalogueSettings(newest.version, dict(newest.settings))


@dataclass(frozen=True)
class Evaluated:
    """One evaluation: the document (Japanese), its findings in English, the vulnerabilities
    (None when not matched) and what the vulnerability checks read besides them."""

    result: dict
    findings_en: list
    vulnerabilities: list | None = None
    basis: Any = None


def evaluate_evidence(payload: dict, *, as_of: dt.date, catalogue: CatalogueSettings) -> Evaluated:
    """Vulnerabilities and lifecycle from the advisory store, then the five controls."""
    from mamori.advisories.services import assess_evidence
    from mamori.verification.evaluation import evaluate, vulnerability_basis

    values = catalogue.values
    try:
        assessed = assess_evidence(
            payload,
            as_of=as_of,
            patch_days=int(values.get("patch_days", 14)),
            cvss_threshold=float(values.get("cvss_threshold", 7.0)),
        )
        arguments = {
            "as_of": as_of,
            "settings": values,
            "vulnerabilities": assessed["vulnerabilities"],
            "vulnerabilities_complete": assessed["vulnerabilities_complete"],
            "os_support": assessed.get("os_support"),
            "software_support": assessed.get("software_support", []),
            "catalogue": catalogue.version or None,
            "now": timezone.now(),
        }
        result = evaluate(payload, language="ja", **arguments)
        english = evaluate(payload, language="en", **arguments)
        basis = vulnerability_basis(
            payload,
            matched=assessed["vulnerabilities"] is not None,
            advisories_cover_release=assessed["vulnerabilities_complete"],
        )
    except MamoriError:
        raise
    except Exception:
        # Schema-valid evidence must always evaluate; if it does not, that is our bug. The
        # client gets a reason and nothing is stored; the log keeps the traceback.
        log.exception("evaluating evidence failed")
        raise EvaluationFailed(
            _("The evidence is valid but could not be evaluated; nothing was stored.")
        ) from None
    return Evaluated(result, english.get("findings", []), assessed["vulnerabilities"], basis)


def verdict_or_unknown(value: Any) -> str:
    return value if value in Verdict.values else Verdict.UNKNOWN


def store_evaluation(
    evidence: Evidence, evaluated: Evaluated, *, as_of, catalogue, trigger
) -> Evaluation:
    """Write one evaluation with its check and vulnerability rows (in the caller's
    transaction)."""
    from mamori.verification.evaluation import (
        effective_settings,
        is_kev_overdue,
        vulnerability_check_ids,
    )

    # The vulnerabilities are rows (a re-match patches them), not part of the stored document.
    result = {key: value for key, value in evaluated.result.items() if key != "vulnerabilities"}
    controls = result.get("controls") or {}
    findings = [item for item in result.get("findings") or [] if isinstance(item, Mapping)]
    vulnerabilities = [v for v in evaluated.vulnerabilities or [] if isinstance(v, Mapping)]
    basis = evaluated.basis
    kev_days = effective_settings(catalogue.values)["kev_patch_days"]
    # The vulnerability checks' texts depend on the rows, which a re-match patches: they are
    # written when the document is read, and their rows here keep only the status.
    decided_from_rows = vulnerability_check_ids()
    evaluation = Evaluation.objects.create(
        evidence=evidence,
        evaluated_at=timezone.now(),
        as_of=as_of,
        catalogue_version=catalogue.version[:40],
        trigger=trigger,
        failed_checks=sum(1 for item in findings if item.get("status") == "fail"),
        vulnerabilities=len(vulnerabilities),
        overdue_vulnerabilities=sum(1 for v in vulnerabilities if v.get("overdue")),
        kev_vulnerabilities=sum(1 for v in vulnerabilities if v.get("kev")),
        kev_overdue_vulnerabilities=sum(1 for v in vulnerabilities if is_kev_overdue(v, kev_days)),
        packages_complete=basis.packages_complete,
        vulnerability_coverage=basis.coverage,
        vulnerabilities_matched=basis.matched,
        result=result,
        findings_en=evaluated.findings_en,
        **{control: verdict_or_unknown(controls.get(control)) for control in CONTROLS},
    )
    CheckResult.objects.bulk_create(
        CheckResult(
            evaluation=evaluation,
            check_id=str(item.get("check", ""))[:32],
            control=str(item.get("control", ""))[:32],
            status=str(item.get("status", ""))[:8],
            severity=str(item.get("severity") or "")[:16],
            detail="" if item.get("check") in decided_from_rows else str(item.get("detail") or ""),
        )
        for item in findings
    )
    insert_rows(
        Vulnerability,
        [Vulnerability.from_record(evaluation.pk, dict(record)) for record in vulnerabilities],
    )
    return evaluation
