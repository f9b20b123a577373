"""Accepting evidence, evaluating it, re-matching hosts after new advisories, and the figures
of continuous assurance.

An upload goes: read the body (bounded, gzip bounded after decompression) → parse and check the
JSON → ``validate_evidence`` (the schema) → digest → duplicate? → ``assess_evidence`` +
``evaluate`` outside any transaction (the slow part, no locks held) → one transaction that
stores host, evidence, evaluation, check rows, package keys and the audit entry together, so a
failure anywhere leaves nothing half-written.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, OuterRef, Q, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from mamori.audit.services import record
from mamori.core.bulk import insert_rows, update_rows
from mamori.core.errors import MamoriError
from mamori.verification.models import (
    CONTROLS,
    CheckResult,
    Evaluation,
    Evidence,
    Host,
    HostTarget,
    MatchTarget,
    MatchTargetName,
    Trigger,
    Verdict,
    VerdictChange,
    Vulnerability,
    identity_key,
)

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 16 * 1024 * 1024
DEFAULT_CHECKIN_DAYS = 7
READ_CHUNK = 64 * 1024
INFLATE_PIECE = 1024 * 1024
MAX_DEPTH = 64
# A clock a little fast is tolerated; a collection claiming to come from tomorrow is not.
FUTURE_TOLERANCE = dt.timedelta(hours=1)
# Package names longer than this are clipped in the name index (and in look-ups, alike): a
# clipped name can only make a re-match compare one target too many, never miss one.
KEY_NAME_LENGTH = MatchTargetName._meta.get_field("name").max_length
KEY_LOOKUP_CHUNK = 500
ID_CHUNK = 5000


def max_evidence_bytes() -> int:
    return int(getattr(settings, "MAMORI_EVIDENCE_UPLOAD_MAX_BYTES", DEFAULT_MAX_BYTES))


def checkin_days() -> int:
    return int(getattr(settings, "MAMORI_ASSURANCE_CHECKIN_DAYS", DEFAULT_CHECKIN_DAYS))


# --- Refusals -----------------------------------------------------------------------------------


class EvidenceRejected(MamoriError):
    """The upload is not acceptable evidence; ``field`` names the JSON path when there is one."""

    code = "invalid_evidence"


class EvidenceTooLarge(MamoriError):
    status = 413
    code = "too_large"


class UnsupportedEncoding(MamoriError):
    status = 415
    code = "unsupported_media_type"


class EvaluationFailed(MamoriError):
    status = 422
    code = "evaluation_failed"


# --- Reading and checking the upload --------------------------------------------------------


def _too_large(limit: int, *, decompressed: bool = False) -> EvidenceTooLarge:
    if decompressed:
        message = _("Once decompressed, the evidence is larger than %(limit)s bytes; refused.")
    else:
        message = _("The evidence is larger than %(limit)s bytes; refused.")
    return EvidenceTooLarge(message % {"limit": f"{limit:,}"})


def read_body(
    stream, *, content_length: int | None, content_encoding: str, limit: int | None = None
) -> bytearray:
    """The request body, decompressed as it is read. Never holds more than ``limit`` bytes of
    the body as sent nor of its decompressed form: a gzip bomb stops at the limit with 413."""
    limit = max_evidence_bytes() if limit is None else limit
    encoding = (content_encoding or "").strip().lower()
    if encoding not in ("", "identity", "gzip", "x-gzip"):
        raise UnsupportedEncoding(
            _("Content-Encoding %(encoding)s is not supported; send gzip or no encoding.")
            % {"encoding": encoding[:40]}
        )
    if content_length is not None and content_length > limit:
        raise _too_large(limit)
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS) if "gzip" in encoding else None
    body = bytearray()
    received = 0
    while chunk := stream.read(READ_CHUNK):
        received += len(chunk)
        if received > limit:
            raise _too_large(limit)
        if decompressor is None:
            body += chunk
        else:
            _inflate(decompressor, chunk, body, limit)
    if decompressor is not None:
        if not decompressor.eof:
            raise EvidenceRejected(_("The gzip data is truncated."))
        if decompressor.unused_data:
            raise EvidenceRejected(_("There is data after the end of the gzip stream."))
    return body


def _inflate(decompressor, data: bytes, body: bytearray, limit: int) -> None:
    try:
        while data and not decompressor.eof:
            # Small pieces (no second copy of a large one), never more than one byte past the
            # limit: enough to know it was exceeded.
            body += decompressor.decompress(data, min(INFLATE_PIECE, limit + 1 - len(body)))
            if len(body) > limit:
                raise _too_large(limit, decompressed=True)
            data = decompressor.unconsumed_tail
    except zlib.error:
        raise EvidenceRejected(_("The body is not valid gzip data.")) from None
    if decompressor.eof and (data or decompressor.unused_data):
        raise EvidenceRejected(_("There is data after the end of the gzip stream."))


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _path(parts: Iterable[str | int]) -> str:
    """A JSON path in the form the schema validation reports (``$.packages.items[3].name``)."""
    text = "$"
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part.isidentifier() and len(part) <= 60:
            text += f".{part}"
        else:
            text += f"[{json.dumps(part[:60])}]"
    return text


def _clean_string(value: str, parts: list) -> None:
    # PostgreSQL stores neither NUL characters nor unpaired surrogates (which JSON's \\u escapes
    # can produce); refusing them here keeps both databases alike and the error clear.
    if "\x00" in value:
        raise EvidenceRejected(
            _("%(path)s: contains a NUL character.") % {"path": _path(parts)}, field=_path(parts)
        )
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise EvidenceRejected(
            _("%(path)s: contains an unpaired surrogate (not valid Unicode).")
            % {"path": _path(parts)},
            field=_path(parts),
        ) from None


def _check_structure(payload: Any) -> None:
    """Depth and string checks, iteratively (a deep document must not exhaust the stack)."""
    stack: list[tuple[Any, list, int]] = [(payload, [], 0)]
    while stack:
        value, parts, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise EvidenceRejected(
                _("%(path)s: nested deeper than %(depth)s levels.")
                % {"path": _path(parts), "depth": MAX_DEPTH},
                field=_path(parts),
            )
        if isinstance(value, str):
            _clean_string(value, parts)
        elif isinstance(value, dict):
            for key, item in value.items():
                _clean_string(key, [*parts, key])
                stack.append((item, [*parts, key], depth + 1))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                stack.append((item, [*parts, index], depth + 1))


def parse_evidence(raw: bytes | bytearray) -> dict:
    """JSON → a checked ``mamori.evidence/1`` document, or EvidenceRejected naming the path."""
    from mamori.verification.evidence import EvidenceError, validate_evidence

    if not raw.strip():
        raise EvidenceRejected(_("The body is empty; send the evidence JSON."))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EvidenceRejected(
            _("The body is not UTF-8 (byte %(position)s).") % {"position": exc.start}
        ) from None
    try:
        payload = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise EvidenceRejected(_("The JSON is nested too deeply.")) from None
    except json.JSONDecodeError as exc:
        raise EvidenceRejected(
            _("The body is not valid JSON: %(reason)s at line %(line)s, column %(column)s.")
            % {"reason": exc.msg, "line": exc.lineno, "column": exc.colno}
        ) from None
    except ValueError as exc:  # NaN/Infinity, or an integer too long to convert
        raise EvidenceRejected(
            _("The body is not valid JSON: %(reason)s.") % {"reason": str(exc)[:200]}
        ) from None
    if not isinstance(payload, dict):
        raise EvidenceRejected(_("The evidence must be a JSON object."))
    _check_structure(payload)
    try:
        validate_evidence(payload)
    except EvidenceError as exc:
        path = str(getattr(exc, "path", "") or "")
        reason = str(getattr(exc, "reason", "") or exc)
        message = f"{path}: {reason}" if path else reason
        raise EvidenceRejected(message[:1000], field=path[:200] or None) from None
    except RecursionError:
        raise EvidenceRejected(_("The JSON is nested too deeply.")) from None
    return payload


def canonical_bytes(payload: Mapping) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def digest_of(payload: Mapping) -> tuple[str, int]:
    """SHA-256 of the canonical JSON and its size in bytes."""
    canonical = canonical_bytes(payload)
    return hashlib.sha256(canonical).hexdigest(), len(canonical)


# --- What an evidence says about its host ------------------------------------------------------


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _clip(value: str, field_name: str, model=Host) -> str:
    length = model._meta.get_field(field_name).max_length
    return value if len(value) <= length else value[: length - 1] + "…"


@dataclass(frozen=True)
class HostFacts:
    hostname: str
    machine_id: str
    architecture: str
    os_pretty_name: str
    os_id: str
    os_version: str
    collected_at: dt.datetime

    @property
    def identity(self) -> str:
        return identity_key(self.machine_id, self.hostname)

    def fields(self) -> dict[str, str]:
        return {
            name: _clip(getattr(self, name), name)
            for name in (
                "hostname",
                "machine_id",
                "architecture",
                "os_pretty_name",
                "os_id",
                "os_version",
            )
        }


def host_facts(payload: Mapping, now: dt.datetime | None = None) -> HostFacts:
    host = payload.get("host") if isinstance(payload.get("host"), Mapping) else {}
    os_release = payload.get("os") if isinstance(payload.get("os"), Mapping) else {}
    hostname = _text(host.get("hostname"))
    machine_id = _text(host.get("machine_id")).lower()
    if not hostname and not machine_id:
        raise EvidenceRejected(
            _("$.host: the evidence names neither a hostname nor a machine id."), field="$.host"
        )
    collected_at = _collected_at(payload.get("collected_at"), now or timezone.now())
    return HostFacts(
        hostname=hostname or machine_id,
        machine_id=machine_id,
        architecture=_text(host.get("architecture")),
        os_pretty_name=_text(os_release.get("pretty_name")) or _text(os_release.get("name")),
        os_id=_text(os_release.get("id")),
        os_version=_text(os_release.get("version_id")),
        collected_at=collected_at,
    )


def _collected_at(value: Any, now: dt.datetime) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise EvidenceRejected(
            _("$.collected_at: not an RFC 3339 date and time with a time zone."),
            field="$.collected_at",
        )
    if moment > now + FUTURE_TOLERANCE:
        raise EvidenceRejected(
            _("$.collected_at: %(moment)s is in the future; check the host's clock.")
            % {"moment": value[:40]},
            field="$.collected_at",
        )
    return moment


# --- Evaluating -----------------------------------------------------------------------------


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
    return _bundled_settings()


def _bundled_settings() -> CatalogueSettings:
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


def _verdict(value: Any) -> str:
    return value if value in Verdict.values else Verdict.UNKNOWN


def _new_evaluation(
    evidence: Evidence, evaluated: Evaluated, *, as_of, catalogue, trigger
) -> Evaluation:
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
        **{control: _verdict(controls.get(control)) for control in CONTROLS},
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


# --- The targets of a host: what matching looks up for its latest evidence -------------------


def target_digest(target) -> str:
    """The identity of a ``matching.Target``: every field matching reads."""
    canonical = json.dumps(
        [
            target.family,
            list(target.releases),
            target.name,
            target.version,
            list(target.binaries),
            target.manager,
            list(target.also_names),
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _targets_of(payload: dict) -> dict[str, Any]:
    from mamori.advisories.matching import host_targets

    return {target_digest(target): target for target in host_targets(payload)}


def target_ids(targets: Mapping[str, Any]) -> dict[str, int]:
    """The ``MatchTarget`` id of each target (by digest), creating the rows that are new."""
    ids: dict[str, int] = {}
    digests = list(targets)
    for start in range(0, len(digests), ID_CHUNK):
        chunk = digests[start : start + ID_CHUNK]
        ids.update(MatchTarget.objects.filter(digest__in=chunk).values_list("digest", "pk"))
    missing = [digest for digest in digests if digest not in ids]
    if missing:
        MatchTarget.objects.bulk_create(
            [
                MatchTarget(
                    digest=digest,
                    family=targets[digest].family[:32],
                    name=targets[digest].name,
                    version=targets[digest].version,
                    releases=list(targets[digest].releases),
                    binaries=list(targets[digest].binaries),
                    manager=targets[digest].manager[:16],
                    also_names=list(targets[digest].also_names),
                )
                for digest in missing
            ],
            ignore_conflicts=True,  # a concurrent upload may create the same target
        )
        created = dict(MatchTarget.objects.filter(digest__in=missing).values_list("digest", "pk"))
        MatchTargetName.objects.bulk_create(
            MatchTargetName(target_id=created[digest], family=family, name=name)
            for digest in missing
            if digest in created
            for family, name in sorted(_target_keys(targets[digest]))
        )
        ids.update(created)
    return ids


def _target_keys(target) -> set[tuple[str, str]]:
    return {(target.family[:32], name[:KEY_NAME_LENGTH]) for name in target.names}


def _sync_targets(host: Host, targets: Mapping[str, Any]) -> None:
    """Make the host's target rows those of ``targets``, touching only the rows that change.
    A target row first created by a concurrent transaction that has not committed yet is
    waited for by the unique index, so ``target_ids`` always ends with every id."""
    wanted = set(target_ids(targets).values())
    existing = dict(HostTarget.objects.filter(host=host).values_list("target_id", "pk"))
    gone = [pk for target_id, pk in existing.items() if target_id not in wanted]
    if gone:
        HostTarget.objects.filter(pk__in=gone).delete()
    HostTarget.objects.bulk_create(
        HostTarget(host=host, target_id=target_id) for target_id in sorted(wanted - existing.keys())
    )


def with_newest_evaluations(collections) -> list[Evidence]:
    """Give each evidence its newest evaluation (without the full result) as
    ``newest_evaluation``: two queries however many collections and re-evaluations."""
    collections = list(collections)
    if not collections:
        return collections
    newest = (
        Evaluation.objects.filter(evidence=OuterRef("pk"))
        .order_by("-evaluated_at", "-pk")
        .values("pk")[:1]
    )
    ids = dict(
        Evidence.objects.filter(pk__in=[evidence.pk for evidence in collections])
        .annotate(newest=Subquery(newest))
        .values_list("pk", "newest")
    )
    evaluations = Evaluation.objects.defer("result", "findings_en").in_bulk(
        [pk for pk in ids.values() if pk is not None]
    )
    for evidence in collections:
        evidence.newest_evaluation = evaluations.get(ids.get(evidence.pk))
    return collections


# --- Upload -------------------------------------------------------------------------------------


@dataclass
class UploadOutcome:
    host: Host
    evidence: Evidence
    duplicate: bool
    evaluation: Evaluation | None

    @property
    def controls(self) -> dict[str, str]:
        if self.evaluation is not None:
            return self.evaluation.controls
        latest = self.evidence.evaluations.order_by("-evaluated_at", "-pk").first()
        return latest.controls if latest else {}


def _existing(organisation_id: int, identity: str, digest: str) -> Evidence | None:
    return (
        Evidence.objects.filter(
            host__organisation_id=organisation_id, host__identity=identity, digest=digest
        )
        .select_related("host")
        .defer("payload")
        .first()
    )


def accept_upload(user, token, organisation, raw: bytes | bytearray) -> UploadOutcome:
    """Store one uploaded evidence for ``organisation`` (the token's), evaluated, or
    acknowledge it as a duplicate of one already stored for the same host."""
    payload = parse_evidence(raw)
    facts = host_facts(payload)
    digest, size = digest_of(payload)
    duplicate = _existing(organisation.pk, facts.identity, digest)
    if duplicate is not None:
        return UploadOutcome(duplicate.host, duplicate, True, None)
    as_of = timezone.localdate()
    catalogue = catalogue_settings_for(organisation.pk, as_of)
    evaluated = evaluate_evidence(payload, as_of=as_of, catalogue=catalogue)
    targets = _targets_of(payload)
    try:
        return _store(
            user,
            token,
            organisation,
            payload,
            facts,
            digest,
            size,
            evaluated,
            as_of,
            catalogue,
            targets,
        )
    except IntegrityError:
        # A concurrent upload of the same evidence won the race between our check and insert.
        duplicate = _existing(organisation.pk, facts.identity, digest)
        if duplicate is None:
            raise
        return UploadOutcome(duplicate.host, duplicate, True, None)


@transaction.atomic
def _store(
    user, token, organisation, payload, facts, digest, size, evaluated, as_of, catalogue, targets
):
    now = timezone.now()
    host, created = Host.objects.get_or_create(
        organisation=organisation,
        identity=facts.identity,
        defaults={**facts.fields(), "first_seen": now, "last_seen": now},
    )
    host = Host.objects.select_for_update().get(pk=host.pk)
    duplicate = Evidence.objects.filter(host=host, digest=digest).defer("payload").first()
    if duplicate is not None:
        return UploadOutcome(host, duplicate, True, None)
    evidence = Evidence.objects.create(
        host=host,
        collected_at=facts.collected_at,
        received_at=now,
        uploaded_by=token,
        digest=digest,
        payload=payload,
        size=size,
    )
    evaluation = _new_evaluation(
        evidence, evaluated, as_of=as_of, catalogue=catalogue, trigger=Trigger.UPLOAD
    )
    latest_collected = (
        Evidence.objects.filter(pk=host.latest_evidence_id)
        .values_list("collected_at", flat=True)
        .first()
    )
    # An older collection that arrives late joins the history; it does not become the host's
    # current state.
    if latest_collected is None or facts.collected_at >= latest_collected:
        for name, value in facts.fields().items():
            setattr(host, name, value)
        host.latest_evidence = evidence
        host.latest_evaluation = evaluation
        _sync_targets(host, targets)
    host.last_seen = max(host.last_seen, now)
    host.save()
    record(
        user,
        "evidence.uploaded",
        evidence,
        organisation=organisation,
        details={
            "host": host.pk,
            "new_host": created,
            "digest": digest,
            "size": size,
            "collected_at": facts.collected_at.isoformat(),
            "token": token.pk if token is not None else None,
            "token_kind": getattr(token, "kind", None),
            "controls": evaluation.controls,
        },
    )
    return UploadOutcome(host, evidence, False, evaluation)


# --- Re-matching after new advisories -------------------------------------------------------


def targets_with_keys(keys: Iterable[tuple[str, str]]) -> set[int]:
    """Targets looked up under any of ``keys``: index look-ups, never a scan."""
    names_by_family: dict[str, set[str]] = defaultdict(set)
    for family, name in keys:
        names_by_family[str(family)[:32]].add(str(name)[:KEY_NAME_LENGTH])
    found: set[int] = set()
    for family, names in names_by_family.items():
        ordered = sorted(names)
        for start in range(0, len(ordered), KEY_LOOKUP_CHUNK):
            chunk = ordered[start : start + KEY_LOOKUP_CHUNK]
            found.update(
                MatchTargetName.objects.filter(family=family, name__in=chunk).values_list(
                    "target_id", flat=True
                )
            )
    return found


def hosts_with_keys(keys: Iterable[tuple[str, str]]) -> list[int]:
    """Hosts whose latest evidence looks up any of ``keys``."""
    return sorted(
        set(
            HostTarget.objects.filter(target_id__in=targets_with_keys(keys))
            .values_list("host_id", flat=True)
            .distinct()
        )
    )


def rematch_hosts(host_ids: Iterable[int], today: dt.date | None = None) -> int:
    """Evaluate the latest evidence of these hosts again (new advisories, same evidence);
    store each result as an evaluation triggered by ``rematch``. Returns how many."""
    as_of = today or timezone.localdate()
    settings_by_organisation: dict[int, CatalogueSettings] = {}
    done = 0
    hosts = (
        Host.objects.filter(pk__in=list(host_ids), latest_evidence__isnull=False)
        .select_related("latest_evidence")
        .order_by("pk")
    )
    for host in hosts.iterator(chunk_size=50):
        evidence = host.latest_evidence
        catalogue = settings_by_organisation.get(host.organisation_id)
        if catalogue is None:
            catalogue = catalogue_settings_for(host.organisation_id, as_of)
            settings_by_organisation[host.organisation_id] = catalogue
        try:
            evaluated = evaluate_evidence(evidence.payload, as_of=as_of, catalogue=catalogue)
        except EvaluationFailed:
            continue  # logged; the host keeps its previous evaluation
        with transaction.atomic():
            locked = Host.objects.select_for_update().filter(pk=host.pk).first()
            if locked is None or locked.latest_evidence_id != evidence.pk:
                continue  # a newer upload arrived meanwhile and was evaluated on arrival
            evaluation = _new_evaluation(
                evidence, evaluated, as_of=as_of, catalogue=catalogue, trigger=Trigger.REMATCH
            )
            Host.objects.filter(pk=host.pk).update(latest_evaluation=evaluation)
        done += 1
    return done


# --- Set-based re-match: patch the vulnerability rows and verdicts ----------------------------

UPDATE_CONTROL = "security_update_management"


@dataclass
class RematchOutcome:
    """What a set-based re-match did, and where its time went (seconds by step)."""

    advisories: int = 0
    targets_compared: int = 0
    targets_affected: int = 0
    hosts_patched: int = 0
    verdicts_changed: int = 0
    hosts_reevaluated: int = 0
    rows_written: int = 0
    timings: dict[str, float] = field(default_factory=dict)


class _Clock:
    def __init__(self, outcome: RematchOutcome):
        self.outcome = outcome
        self.last = time.perf_counter()

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.outcome.timings[step] = self.outcome.timings.get(step, 0.0) + now - self.last
        self.last = now


def _chunks(values: Iterable, size: int = ID_CHUNK):
    ordered = sorted(values)
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


def _load_targets(ids: Iterable[int]) -> dict[int, Any]:
    from mamori.advisories.matching import Target

    targets = {}
    for chunk in _chunks(ids):
        for (
            pk,
            family,
            releases,
            name,
            version,
            binaries,
            manager,
            also,
        ) in MatchTarget.objects.filter(pk__in=chunk).values_list(
            "pk", "family", "releases", "name", "version", "binaries", "manager", "also_names"
        ):
            targets[pk] = Target(
                family, tuple(releases), name, version, tuple(binaries), manager, tuple(also)
            )
    return targets


def _settings_by_version(versions: Iterable[str]) -> dict[str, CatalogueSettings]:
    """The thresholds each evaluation was made with, by its catalogue version."""
    from mamori.catalogue.models import Catalogue

    versions = set(versions)
    found = {
        version: CatalogueSettings(version, dict(values))
        for version, values in Catalogue.objects.filter(
            version__in=[v for v in versions if v]
        ).values_list("version", "settings")
    }
    missing = versions - found.keys()
    if missing:
        bundled = _bundled_settings()
        for version in missing:
            found[version] = CatalogueSettings(version, bundled.values)
    return found


def _matching_parameters(values: Mapping[str, Any]) -> tuple[int, float]:
    return int(values.get("patch_days", 14)), float(values.get("cvss_threshold", 7.0))


@dataclass(frozen=True)
class _Latest:
    host_id: int
    evaluation_id: int
    catalogue_version: str
    as_of: dt.date
    basis: Any
    verdict: str
    failed_checks: int
    counts: tuple[int, int, int, int]  # vulnerabilities, overdue, KEV-listed, KEV overdue


def _latest_evaluations(host_ids: Iterable[int]) -> dict[int, _Latest]:
    """The latest evaluation of each host, by evaluation id (without its document)."""
    from mamori.verification.evaluation import VulnerabilityBasis

    latest: dict[int, _Latest] = {}
    for chunk in _chunks(host_ids):
        rows = (
            Host.objects.filter(pk__in=chunk, latest_evaluation__isnull=False)
            .values_list(
                "pk",
                "latest_evaluation_id",
                "latest_evaluation__catalogue_version",
                "latest_evaluation__as_of",
                "latest_evaluation__packages_complete",
                "latest_evaluation__vulnerability_coverage",
                "latest_evaluation__vulnerabilities_matched",
                f"latest_evaluation__{UPDATE_CONTROL}",
                "latest_evaluation__failed_checks",
                "latest_evaluation__vulnerabilities",
                "latest_evaluation__overdue_vulnerabilities",
                "latest_evaluation__kev_vulnerabilities",
                "latest_evaluation__kev_overdue_vulnerabilities",
            )
            .order_by()
        )
        for (
            host_id,
            pk,
            version,
            as_of,
            complete,
            coverage,
            matched,
            verdict,
            failed,
            *counts,
        ) in rows:
            latest[pk] = _Latest(
                host_id,
                pk,
                version,
                as_of,
                VulnerabilityBasis(complete, coverage, matched),
                verdict,
                failed,
                tuple(counts),
            )
    return latest


def _needs_full_evaluation(latest: _Latest) -> bool:
    """Only a full evaluation can tell whether advisories now cover a host that was not
    matched, or whose OS release had no advisories: the patch keeps the basis as it was."""
    return not latest.basis.matched or latest.basis.coverage == "no_advisories"


def rematch_advisories(advisory_ids: Iterable[str], today: dt.date | None = None) -> RematchOutcome:
    """Re-match the fleet after these advisories were added, changed or withdrawn (their
    current state is in the index): compare them with the distinct targets of their packages,
    then patch the vulnerability rows and the update-management verdict of the hosts that hold
    an affected target or had a finding of them — in one transaction."""
    from mamori.advisories.services import load_index

    outcome = RematchOutcome()
    clock = _Clock(outcome)
    as_of = today or timezone.localdate()
    ids = frozenset(str(advisory_id) for advisory_id in advisory_ids)
    outcome.advisories = len(ids)
    if not ids:
        return outcome
    index = load_index()
    clock.lap("index")
    keys: set[tuple[str, str]] = set()
    for advisory_id in ids:
        advisory = index.get(advisory_id)
        if advisory is not None:
            keys |= index.keys_for(advisory)
    candidates = _load_targets(targets_with_keys(keys))
    outcome.targets_compared = len(candidates)
    affected = {
        pk
        for pk, target in candidates.items()
        if any(found["advisory"] in ids for found in index.match_targets([target], as_of=as_of))
    }
    outcome.targets_affected = len(affected)
    clock.lap("compare")

    holders: dict[int, set[int]] = defaultdict(set)
    for chunk in _chunks(affected):
        for host_id, target_id in HostTarget.objects.filter(target_id__in=chunk).values_list(
            "host_id", "target_id"
        ):
            holders[host_id].add(target_id)
    # Hosts that had a finding of these advisories lose or change it.
    latest_ids = Host.objects.filter(latest_evaluation__isnull=False).values("latest_evaluation")
    had = set()
    for chunk in _chunks(ids, KEY_LOOKUP_CHUNK):
        had.update(
            Vulnerability.objects.filter(advisory__in=chunk, evaluation_id__in=latest_ids)
            .values_list("evaluation__evidence__host_id", flat=True)
            .distinct()
        )
    # Hosts never matched, or without advisories for their release until now, are evaluated
    # in full when the advisories concern one of their packages (and, for the latter, their
    # release): only that can tell whether advisories now cover them.
    changed_platforms = {
        (affected.family, affected.release)
        for advisory_id in ids
        if (advisory := index.get(advisory_id)) is not None
        for affected in advisory.affected
    }
    unmatched = set()
    for chunk in _chunks(candidates):
        for host_id, target_id, matched in (
            HostTarget.objects.filter(target_id__in=chunk)
            .filter(
                Q(host__latest_evaluation__vulnerabilities_matched=False)
                | Q(host__latest_evaluation__vulnerability_coverage="no_advisories")
            )
            .values_list("host_id", "target_id", "host__latest_evaluation__vulnerabilities_matched")
        ):
            target = candidates[target_id]
            if not matched or any(
                (target.family, release) in changed_platforms
                for release in target.releases
                if release
            ):
                unmatched.add(host_id)
    latest = _latest_evaluations(set(holders) | had | unmatched)
    clock.lap("hosts")
    # Those not to be evaluated in full that still lack coverage keep their evaluation: the
    # patch would not change their basis, and these advisories are not for their release.
    full = sorted(
        unmatched
        | {
            item.host_id
            for item in latest.values()
            if item.host_id in holders and _needs_full_evaluation(item)
        }
    )
    full_set = set(full)
    patch = {
        pk: item
        for pk, item in latest.items()
        if item.host_id not in full_set and not _needs_full_evaluation(item)
    }
    if full:
        outcome.hosts_reevaluated = rematch_hosts(full, as_of)
        clock.lap("full evaluations")

    settings = _settings_by_version(item.catalogue_version for item in patch.values())
    records: dict[tuple, list[dict]] = {}
    new_rows: dict[int, list[dict]] = {}
    for pk, item in patch.items():
        held = frozenset(holders.get(item.host_id, ()))
        group = (held, item.catalogue_version)
        if group not in records:
            patch_days, threshold = _matching_parameters(settings[item.catalogue_version].values)
            records[group] = [
                found
                for found in index.match_targets(
                    [candidates[target_id] for target_id in sorted(held)],
                    as_of=as_of,
                    patch_days=patch_days,
                    cvss_threshold=threshold,
                )
                if found["advisory"] in ids
            ]
        new_rows[pk] = records[group]
    clock.lap("match")
    _patch(patch, new_rows, settings, replacing=ids, outcome=outcome, clock=clock)
    return outcome


def rematch_all(today: dt.date | None = None) -> RematchOutcome:
    """Re-match every host's latest evaluation against the whole index, once per distinct
    target instead of once per host (after a bulk import or a first import)."""
    from mamori.advisories.services import load_index

    outcome = RematchOutcome()
    clock = _Clock(outcome)
    as_of = today or timezone.localdate()
    index = load_index()
    clock.lap("index")
    used = HostTarget.objects.values("target_id")
    targets = _load_targets(MatchTarget.objects.filter(pk__in=used).values_list("pk", flat=True))
    outcome.targets_compared = len(targets)
    affected = {pk for pk, target in targets.items() if index.match_targets([target], as_of=as_of)}
    outcome.targets_affected = len(affected)
    clock.lap("compare")
    holders: dict[int, set[int]] = defaultdict(set)
    for chunk in _chunks(affected):
        for host_id, target_id in HostTarget.objects.filter(target_id__in=chunk).values_list(
            "host_id", "target_id"
        ):
            holders[host_id].add(target_id)
    latest = _latest_evaluations(Host.objects.values_list("pk", flat=True))
    clock.lap("hosts")
    full = _covered_now(
        {item.host_id: item for item in latest.values() if _needs_full_evaluation(item)}
    )
    patch = {pk: item for pk, item in latest.items() if not _needs_full_evaluation(item)}
    if full:
        outcome.hosts_reevaluated = rematch_hosts(full, as_of)
        clock.lap("full evaluations")
    settings = _settings_by_version(item.catalogue_version for item in patch.values())
    records: dict[tuple, list[dict]] = {}
    new_rows: dict[int, list[dict]] = {}
    for pk, item in patch.items():
        held = frozenset(holders.get(item.host_id, ()))
        group = (held, item.catalogue_version)
        if group not in records:
            patch_days, threshold = _matching_parameters(settings[item.catalogue_version].values)
            records[group] = index.match_targets(
                [targets[target_id] for target_id in sorted(held)],
                as_of=as_of,
                patch_days=patch_days,
                cvss_threshold=threshold,
            )
        new_rows[pk] = records[group]
    clock.lap("match")
    _patch(patch, new_rows, settings, replacing=None, outcome=outcome, clock=clock)
    return outcome


def _covered_now(hosts: Mapping[int, _Latest]) -> list[int]:
    """Of these hosts (never matched, or without advisories for their release), those a full
    evaluation could now tell more about: never matched, or advisories for their release exist
    now (their targets name the release)."""
    from mamori.advisories.services import stored_platforms

    platforms = stored_platforms()
    chosen = {host_id for host_id, item in hosts.items() if not item.basis.matched}
    rest = [host_id for host_id in hosts if host_id not in chosen]
    for chunk in _chunks(rest):
        for host_id, family, releases in (
            HostTarget.objects.filter(host_id__in=chunk)
            .values_list("host_id", "target__family", "target__releases")
            .distinct()
        ):
            if any((family, release) in platforms for release in releases or () if release):
                chosen.add(host_id)
    return sorted(chosen)


@transaction.atomic
def _patch(
    patch: Mapping[int, _Latest],
    new_rows: Mapping[int, list[dict]],
    settings: Mapping[str, CatalogueSettings],
    *,
    replacing: frozenset[str] | None,
    outcome: RematchOutcome,
    clock: _Clock,
) -> None:
    """Replace the vulnerability rows of these evaluations (those of ``replacing`` advisories,
    or all), move their counters by what was replaced, decide the vulnerability checks again
    from the counters, and patch the check rows and the update-management verdict where a
    status changed. Evaluations not named keep everything. Nothing here reads a host's other
    vulnerabilities: the work grows with the rows replaced, not with the rows kept."""
    from mamori.verification.evaluation import (
        VulnerabilitySummary,
        control_verdicts,
        effective_settings,
        is_kev_overdue,
        vulnerability_check_ids,
        vulnerability_statuses,
    )

    if not patch:
        return
    evaluation_ids = sorted(patch)
    kev_days = {
        version: effective_settings(values.values)["kev_patch_days"]
        for version, values in settings.items()
    }
    counts = {pk: list(patch[pk].counts) for pk in evaluation_ids}

    def count(pk: int, item: Mapping[str, Any], step: int) -> None:
        figures = counts[pk]
        figures[0] += step
        figures[1] += step * bool(item.get("overdue"))
        figures[2] += step * bool(item.get("kev"))
        figures[3] += step * is_kev_overdue(item, kev_days[patch[pk].catalogue_version])

    for chunk in _chunks(evaluation_ids):
        rows = Vulnerability.objects.filter(evaluation_id__in=chunk)
        if replacing is None:
            for pk in chunk:
                counts[pk] = [0, 0, 0, 0]
            rows.delete()
            continue
        for advisories in _chunks(replacing, KEY_LOOKUP_CHUNK):
            replaced = rows.filter(advisory__in=advisories)
            for pk, overdue, kev, fixed, days in replaced.values_list(
                "evaluation_id", "overdue", "kev", "fixed_version", "days_since_fix"
            ):
                item = {"overdue": overdue, "kev": kev, "fixed_version": fixed}
                count(pk, item | {"days_since_fix": days}, -1)
            replaced.delete()
    written = []
    for pk in evaluation_ids:
        for found in new_rows.get(pk, ()):
            written.append(Vulnerability.from_record(pk, dict(found)))
            count(pk, found, +1)
    insert_rows(Vulnerability, written)
    outcome.rows_written = len(written)
    clock.lap("write rows")

    decided_again = vulnerability_check_ids()
    stored: dict[int, dict[str, tuple[int, str]]] = defaultdict(dict)
    for chunk in _chunks(evaluation_ids):
        for pk, evaluation_id, check_id, status in CheckResult.objects.filter(
            evaluation_id__in=chunk, check_id__in=sorted(decided_again)
        ).values_list("pk", "evaluation_id", "check_id", "status"):
            stored[evaluation_id][check_id] = (pk, status)
    clock.lap("read rows")

    decided: dict[tuple, dict[str, str]] = {}
    changed: dict[int, dict[str, str]] = {}
    for pk in evaluation_ids:
        item = patch[pk]
        total, overdue, _kev, kev_overdue = counts[pk]
        key = (item.basis, total, overdue, kev_overdue, item.catalogue_version, item.as_of)
        statuses = decided.get(key)
        if statuses is None:
            statuses = decided[key] = vulnerability_statuses(
                item.basis,
                VulnerabilitySummary(total, overdue, kev_overdue),
                settings=settings[item.catalogue_version].values,
                as_of=item.as_of,
            )
        before = {check_id: status for check_id, (_row, status) in stored[pk].items()}
        if statuses != before:
            changed[pk] = statuses
    # Only where a check's status changed can the verdict change: read the control's other
    # checks for those evaluations alone.
    others: dict[int, list[str]] = defaultdict(list)
    for chunk in _chunks(changed):
        for evaluation_id, status in (
            CheckResult.objects.filter(evaluation_id__in=chunk, control=UPDATE_CONTROL)
            .exclude(check_id__in=sorted(decided_again))
            .values_list("evaluation_id", "status")
        ):
            others[evaluation_id].append(status)
    clock.lap("decide")

    now = timezone.now()
    evaluation_updates = []
    check_updates, check_inserts, check_deletes = [], [], []
    changes = []
    checks_by_id = {check.id: check for check in _vulnerability_check_objects()}
    for pk in evaluation_ids:
        item = patch[pk]
        verdict, failed = item.verdict, item.failed_checks
        statuses = changed.get(pk)
        if statuses is not None:
            previous = stored[pk]
            verdict = control_verdicts(
                [{"control": UPDATE_CONTROL, "status": s} for s in others.get(pk, ())]
                + [
                    {"control": checks_by_id[check_id].control, "status": status}
                    for check_id, status in statuses.items()
                ]
            )[UPDATE_CONTROL]
            failed += sum(1 for status in statuses.values() if status == "fail") - sum(
                1 for _row, status in previous.values() if status == "fail"
            )
            for check_id, status in statuses.items():
                if check_id in previous:
                    if previous[check_id][1] != status:
                        check_updates.append((previous[check_id][0], status))
                else:
                    check = checks_by_id[check_id]
                    check_inserts.append(
                        CheckResult(
                            evaluation_id=pk,
                            check_id=check.id,
                            control=check.control,
                            status=status,
                            severity=check.severity[:16],
                        )
                    )
            check_deletes += [
                row for check_id, (row, _s) in previous.items() if check_id not in statuses
            ]
        evaluation_updates.append((pk, verdict, *counts[pk], failed, now))
        if verdict != item.verdict:
            changes.append(
                VerdictChange(
                    host_id=item.host_id,
                    evaluation_id=pk,
                    changed_at=now,
                    control=UPDATE_CONTROL,
                    before=item.verdict,
                    after=verdict,
                    # The advisories found now, or (a withdrawal) those that were replaced.
                    advisories=sorted(
                        {found["advisory"] for found in new_rows.get(pk, ())} or (replacing or ())
                    )[:50],
                )
            )
    update_rows(
        Evaluation,
        [
            UPDATE_CONTROL,
            "vulnerabilities",
            "overdue_vulnerabilities",
            "kev_vulnerabilities",
            "kev_overdue_vulnerabilities",
            "failed_checks",
            "rematched_at",
        ],
        evaluation_updates,
    )
    update_rows(CheckResult, ["status"], check_updates)
    if check_inserts:
        CheckResult.objects.bulk_create(check_inserts)
    if check_deletes:
        CheckResult.objects.filter(pk__in=check_deletes).delete()
    insert_rows(VerdictChange, changes)
    outcome.hosts_patched = len(evaluation_updates)
    outcome.verdicts_changed = len(changes)
    clock.lap("update")


def _vulnerability_check_objects():
    from mamori.verification.evaluation import vulnerability_checks

    return vulnerability_checks()


# --- Continuous assurance --------------------------------------------------------------------


@dataclass(frozen=True)
class Assurance:
    window_days: int
    in_scope: int
    checked_in: int
    passing: dict[str, int]

    @property
    def rows(self) -> list[dict]:
        from mamori.verification.models import CONTROL_LABELS

        return [
            {"control": control, "label": CONTROL_LABELS[control], "passing": self.passing[control]}
            for control in CONTROLS
        ]

    def as_dict(self) -> dict:
        return {
            "window_days": self.window_days,
            "in_scope_hosts": self.in_scope,
            "checked_in": self.checked_in,
            "passing": dict(self.passing),
        }


def continuous_assurance(
    organisation_id: int, *, now: dt.datetime | None = None, days: int | None = None
) -> Assurance:
    """Of the organisation's in-scope hosts: how many checked in (uploaded new evidence) within
    the last ``days``, and how many of those pass each control on their latest evaluation. A
    host that has not checked in within the window does not count as passing: old evidence
    says nothing about now. One query."""
    days = checkin_days() if days is None else days
    cutoff = (now or timezone.now()) - dt.timedelta(days=days)
    recent = Q(last_seen__gte=cutoff)
    figures = Host.objects.filter(organisation_id=organisation_id, in_scope=True).aggregate(
        in_scope=Count("pk"),
        checked_in=Count("pk", filter=recent),
        **{
            control: Count("pk", filter=recent & Q(**{f"latest_evaluation__{control}": "pass"}))
            for control in CONTROLS
        },
    )
    return Assurance(
        window_days=days,
        in_scope=figures["in_scope"],
        checked_in=figures["checked_in"],
        passing={control: figures[control] for control in CONTROLS},
    )


# --- Scope ------------------------------------------------------------------------------------


def set_in_scope(user, host_id: int, in_scope: bool) -> Host:
    with transaction.atomic():
        host = (
            Host.objects.select_for_update(of=("self",))
            .select_related("organisation")
            .get(pk=host_id)
        )
        if host.in_scope == in_scope:
            return host
        host.in_scope = in_scope
        host.save(update_fields=["in_scope", "updated_at"])
        record(
            user,
            "host.scope_changed",
            host,
            organisation=host.organisation,
            details={"in_scope": in_scope},
        )
    return host
