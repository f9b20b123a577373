"""Accepting one evidence upload from an agent, in two steps.

The request (``receive_upload``): read the body (bounded, gzip bounded after decompression) →
parse the JSON → the schema id, the host and the collection time → the canonical digest →
duplicate? → store the canonical JSON as an ``EvidenceUpload`` (the receipt the agent's ``202``
points to). That is linear in the size and cheap (about a second for 120,000 packages).

A worker (``evaluate_upload``, the task ``evaluate_evidence_upload``): the full checks
(structure and the JSON Schema) → ``evaluate_evidence`` outside any transaction (the slow part,
no locks held) → one transaction that stores host, evidence, evaluation, check rows, targets
and the audit entry and marks the receipt done, so a failure anywhere leaves nothing
half-written and a second run (a redelivered task) stores nothing twice. Evidence that fails
the checks or cannot be evaluated marks the receipt failed, with the reason.

``accept_upload`` does both at once, in-process (the demo, the benchmark, tests).
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from mamori.audit.services import record
from mamori.core.errors import MamoriError
from mamori.verification.models import (
    Evaluation,
    Evidence,
    EvidenceUpload,
    Host,
    Trigger,
    UploadState,
    identity_key,
)
from mamori.verification.services.evaluations import (
    CatalogueSettings,
    Evaluated,
    EvaluationFailed,
    catalogue_settings_for,
    evaluate_evidence,
    store_evaluation,
)
from mamori.verification.services.targets import sync_targets, targets_of
from mamori.verification.signals import host_evaluated

if TYPE_CHECKING:
    from mamori.accounts.models import ApiToken, User
    from mamori.organisations.models import Organisation

DEFAULT_MAX_BYTES = 16 * 1024 * 1024
READ_CHUNK = 64 * 1024
INFLATE_PIECE = 1024 * 1024
MAX_DEPTH = 64
# A clock a little fast is tolerated; a collection claiming to come from tomorrow is not.
FUTURE_TOLERANCE = dt.timedelta(hours=1)


def max_evidence_bytes() -> int:
    return int(getattr(settings, "MAMORI_EVIDENCE_UPLOAD_MAX_BYTES", DEFAULT_MAX_BYTES))


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


def load_document(raw: bytes | bytearray) -> dict:
    """JSON → an object claiming to be ``mamori.evidence/1``, or EvidenceRejected. Linear in
    the size and cheap: what the upload request checks before storing."""
    from mamori.verification.evidence import SCHEMA_ID

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
    if payload.get("schema") != SCHEMA_ID:
        shown = json.dumps(payload.get("schema"), ensure_ascii=False)[:60]
        raise EvidenceRejected(f"$.schema: expected {SCHEMA_ID!r}, found {shown}", field="$.schema")
    return payload


def check_document(payload: dict) -> None:
    """The full checks: structure (depth, NUL characters, unpaired surrogates) and the JSON
    Schema. EvidenceRejected names the JSON path. Seconds for a very large document: a worker
    runs them."""
    from mamori.verification.evidence import EvidenceError, validate_evidence

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


def parse_evidence(raw: bytes | bytearray) -> dict:
    """JSON → a checked ``mamori.evidence/1`` document, or EvidenceRejected naming the path."""
    payload = load_document(raw)
    check_document(payload)
    return payload


def canonical_bytes(payload: Mapping) -> bytes:
    """The JSON with sorted keys and no spaces, UTF-8: equal for equal content. Refuses an
    unpaired surrogate (``\\ud800`` in the JSON), which has no UTF-8 form."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise EvidenceRejected(
            _("The evidence contains an unpaired surrogate (not valid Unicode).")
        ) from None


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
    # Checked here, not only with the whole document: the upload request stores them.
    _clean_string(hostname, ["host", "hostname"])
    _clean_string(machine_id, ["host", "machine_id"])
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


# --- Upload -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentUpload:
    """One evidence upload as it arrived: the body (already read and decompressed), the
    organisation it is for (the token's), who sent it with which token, and the language the
    reasons of a refusal are written in. The demo and the benchmark upload without a token, and
    the benchmark without a user."""

    organisation: Organisation
    body: bytes | bytearray
    user: User | None = None
    token: ApiToken | None = None
    language: str = "ja"


@dataclass(frozen=True)
class Receipt:
    """The upload row for what the request received: new, or the earlier one it duplicates."""

    upload: EvidenceUpload
    duplicate: bool


@dataclass(frozen=True)
class _CheckedUpload:
    """An upload read, checked and evaluated: everything its one transaction stores."""

    receipt: EvidenceUpload
    payload: dict
    facts: HostFacts
    as_of: dt.date
    catalogue: CatalogueSettings
    evaluated: Evaluated
    targets: dict[str, Any]


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


def _live_upload(organisation_id: int, identity: str, digest: str) -> EvidenceUpload | None:
    return (
        EvidenceUpload.objects.filter(
            organisation_id=organisation_id, identity=identity, digest=digest
        )
        .exclude(state=UploadState.FAILED)
        .defer("body")
        .first()
    )


def receive_upload(upload: AgentUpload) -> Receipt:
    """Store one upload for evaluation, or find the upload it duplicates (the same content for
    the same host of the organisation; a failed upload may be sent again). The caller queues
    ``evaluate_upload`` for a new one (``verification.intake``)."""
    organisation = upload.organisation
    payload = load_document(upload.body)
    facts = host_facts(payload)
    canonical = canonical_bytes(payload)
    digest = hashlib.sha256(canonical).hexdigest()
    found = _live_upload(organisation.pk, facts.identity, digest)
    if found is not None:
        return Receipt(found, True)
    stored = _existing(organisation.pk, facts.identity, digest)
    fields = {
        "organisation": organisation,
        "identity": facts.identity,
        "hostname": facts.fields()["hostname"],
        "digest": digest,
        "size": len(canonical),
        "uploaded_by": upload.token,
        "user": upload.user,
        "language": (upload.language or "ja")[:8],
    }
    try:
        with transaction.atomic():
            if stored is not None:
                # Stored before uploads had receipts (or by another path): a receipt for it,
                # so the agent still gets a status to read; the evidence is not stored again.
                done = {
                    "state": UploadState.DONE,
                    "evidence": stored,
                    "finished_at": timezone.now(),
                }
                return Receipt(EvidenceUpload.objects.create(**fields, **done), True)
            # Level 1: the body is JSON text; gzip makes it about a tenth, quickly.
            body = gzip.compress(canonical, compresslevel=1, mtime=0)
            return Receipt(EvidenceUpload.objects.create(**fields, body=body), False)
    except IntegrityError:
        # The same evidence arrived twice at once: the other request's receipt is ours.
        found = _live_upload(organisation.pk, facts.identity, digest)
        if found is None:
            raise
        return Receipt(found, True)


def evaluate_upload(upload_id: int) -> EvidenceUpload | None:
    """Check, evaluate and store one received upload; returns its receipt afterwards (None
    when there is no such upload). Idempotent: an upload already done or failed is left as it
    is, and a run that finds the evidence stored (by a first run that died after committing)
    only links it, so a redelivered task stores nothing twice."""
    receipt = (
        EvidenceUpload.objects.select_related("organisation", "uploaded_by", "user")
        .filter(pk=upload_id)
        .first()
    )
    if receipt is None or receipt.state != UploadState.PENDING:
        return receipt
    with translation.override(receipt.language or None):
        try:
            payload = load_document(gzip.decompress(bytes(receipt.body)))
            check_document(payload)
            facts = host_facts(payload, now=receipt.received_at)
            as_of = timezone.localdate()
            catalogue = catalogue_settings_for(receipt.organisation_id, as_of)
            checked = _CheckedUpload(
                receipt=receipt,
                payload=payload,
                facts=facts,
                as_of=as_of,
                catalogue=catalogue,
                evaluated=evaluate_evidence(payload, as_of=as_of, catalogue=catalogue),
                targets=targets_of(payload),
            )
        except (EvidenceRejected, EvaluationFailed) as exc:
            return _failed(receipt.pk, exc)
    try:
        _store(checked)
    except IntegrityError:
        # A concurrent run stored the same evidence for the host between our check and insert.
        stored = _existing(receipt.organisation_id, facts.identity, receipt.digest)
        if stored is None:
            raise
        with transaction.atomic():
            _finish(_locked(receipt.pk), stored)
    return EvidenceUpload.objects.defer("body").get(pk=receipt.pk)


def accept_upload(upload: AgentUpload) -> UploadOutcome:
    """Receive and evaluate one upload at once, in this process: for the demo, the benchmark
    and tests (agents go through the API, which answers before the evaluation). Raises the
    refusal when the evidence fails its checks or its evaluation."""
    receipt = receive_upload(upload)
    if receipt.upload.state == UploadState.PENDING:
        evaluate_upload(receipt.upload.pk)
    row = (
        EvidenceUpload.objects.select_related("evidence__host")
        .defer("body")
        .get(pk=receipt.upload.pk)
    )
    if row.state == UploadState.FAILED:
        error = EvaluationFailed if row.code == EvaluationFailed.code else EvidenceRejected
        raise error(row.detail)
    evaluation = None
    if not receipt.duplicate:
        evaluation = row.evidence.evaluations.order_by("-evaluated_at", "-pk").first()
    return UploadOutcome(row.evidence.host, row.evidence, receipt.duplicate, evaluation)


def _locked(upload_id: int) -> EvidenceUpload:
    return EvidenceUpload.objects.select_for_update().defer("body").get(pk=upload_id)


def _finish(receipt: EvidenceUpload, evidence: Evidence) -> None:
    receipt.state = UploadState.DONE
    receipt.evidence = evidence
    receipt.body = b""  # the evidence row holds the document now
    receipt.finished_at = timezone.now()
    receipt.save(update_fields=["state", "evidence", "body", "finished_at"])


def _failed(upload_id: int, exc: MamoriError) -> EvidenceUpload:
    with transaction.atomic():
        receipt = _locked(upload_id)
        if receipt.state == UploadState.PENDING:
            receipt.state = UploadState.FAILED
            receipt.code = exc.code
            receipt.detail = str(exc.message)[:2000]
            receipt.body = b""
            receipt.finished_at = timezone.now()
            receipt.save(update_fields=["state", "code", "detail", "body", "finished_at"])
    return receipt


@transaction.atomic
def _store(checked: _CheckedUpload) -> None:
    receipt = _locked(checked.receipt.pk)
    if receipt.state != UploadState.PENDING:  # another run finished it meanwhile
        return
    facts = checked.facts
    organisation = checked.receipt.organisation
    now = timezone.now()
    host, created = Host.objects.get_or_create(
        organisation=organisation,
        identity=facts.identity,
        defaults={**facts.fields(), "first_seen": now, "last_seen": now},
    )
    host = Host.objects.select_for_update().get(pk=host.pk)
    duplicate = Evidence.objects.filter(host=host, digest=receipt.digest).defer("payload").first()
    if duplicate is not None:
        _finish(receipt, duplicate)
        return
    evidence = Evidence.objects.create(
        host=host,
        collected_at=facts.collected_at,
        received_at=receipt.received_at,
        uploaded_by=checked.receipt.uploaded_by,
        digest=receipt.digest,
        payload=checked.payload,
        size=receipt.size,
    )
    evaluation = store_evaluation(
        evidence,
        checked.evaluated,
        as_of=checked.as_of,
        catalogue=checked.catalogue,
        trigger=Trigger.UPLOAD,
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
        sync_targets(host, checked.targets)
    host.last_seen = max(host.last_seen, receipt.received_at)
    host.save()
    if host.latest_evaluation_id == evaluation.pk and (
        evaluation.kev_vulnerabilities or evaluation.overdue_vulnerabilities
    ):
        host_evaluated.send(sender=Host, host_id=host.pk)
    token = checked.receipt.uploaded_by
    record(
        checked.receipt.user,
        "evidence.uploaded",
        evidence,
        organisation=organisation,
        details={
            "host": host.pk,
            "new_host": created,
            "digest": receipt.digest,
            "size": receipt.size,
            "collected_at": facts.collected_at.isoformat(),
            "token": token.pk if token is not None else None,
            "token_kind": getattr(token, "kind", None),
            "upload": receipt.pk,
            "controls": evaluation.controls,
        },
    )
    _finish(receipt, evidence)
