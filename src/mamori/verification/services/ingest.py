"""Accepting one evidence upload from an agent.

An upload goes: read the body (bounded, gzip bounded after decompression) → parse and check the
JSON → ``validate_evidence`` (the schema) → digest → duplicate? → ``evaluate_evidence``
outside any transaction (the slow part, no locks held) → one transaction that stores host,
evidence, evaluation, check rows, targets and the audit entry together, so a failure anywhere
leaves nothing half-written.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from mamori.audit.services import record
from mamori.core.errors import MamoriError
from mamori.verification.models import Evaluation, Evidence, Host, Trigger, identity_key
from mamori.verification.services.evaluations import (
    CatalogueSettings,
    Evaluated,
    catalogue_settings_for,
    evaluate_evidence,
    store_evaluation,
)
from mamori.verification.services.targets import sync_targets, targets_of

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


# --- Upload -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentUpload:
    """One evidence upload as it arrived: the body (already read and decompressed), the
    organisation it is for (the token's), and who sent it with which token. The demo and the
    benchmark upload without a token, and the benchmark without a user."""

    organisation: Organisation
    body: bytes | bytearray
    user: User | None = None
    token: ApiToken | None = None


@dataclass(frozen=True)
class _CheckedUpload:
    """An upload read, checked and evaluated: everything its one transaction stores."""

    upload: AgentUpload
    payload: dict
    facts: HostFacts
    digest: str
    size: int
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


def accept_upload(upload: AgentUpload) -> UploadOutcome:
    """Store one uploaded evidence for the upload's organisation, evaluated, or acknowledge it
    as a duplicate of one already stored for the same host."""
    organisation = upload.organisation
    payload = parse_evidence(upload.body)
    facts = host_facts(payload)
    digest, size = digest_of(payload)
    duplicate = _existing(organisation.pk, facts.identity, digest)
    if duplicate is not None:
        return UploadOutcome(duplicate.host, duplicate, True, None)
    as_of = timezone.localdate()
    catalogue = catalogue_settings_for(organisation.pk, as_of)
    checked = _CheckedUpload(
        upload=upload,
        payload=payload,
        facts=facts,
        digest=digest,
        size=size,
        as_of=as_of,
        catalogue=catalogue,
        evaluated=evaluate_evidence(payload, as_of=as_of, catalogue=catalogue),
        targets=targets_of(payload),
    )
    try:
        return _store(checked)
    except IntegrityError:
        # A concurrent upload of the same evidence won the race between our check and insert.
        duplicate = _existing(organisation.pk, facts.identity, digest)
        if duplicate is None:
            raise
        return UploadOutcome(duplicate.host, duplicate, True, None)


@transaction.atomic
def _store(checked: _CheckedUpload) -> UploadOutcome:
    upload, facts = checked.upload, checked.facts
    now = timezone.now()
    host, created = Host.objects.get_or_create(
        organisation=upload.organisation,
        identity=facts.identity,
        defaults={**facts.fields(), "first_seen": now, "last_seen": now},
    )
    host = Host.objects.select_for_update().get(pk=host.pk)
    duplicate = Evidence.objects.filter(host=host, digest=checked.digest).defer("payload").first()
    if duplicate is not None:
        return UploadOutcome(host, duplicate, True, None)
    evidence = Evidence.objects.create(
        host=host,
        collected_at=facts.collected_at,
        received_at=now,
        uploaded_by=upload.token,
        digest=checked.digest,
        payload=checked.payload,
        size=checked.size,
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
    host.last_seen = max(host.last_seen, now)
    host.save()
    token = upload.token
    record(
        upload.user,
        "evidence.uploaded",
        evidence,
        organisation=upload.organisation,
        details={
            "host": host.pk,
            "new_host": created,
            "digest": checked.digest,
            "size": checked.size,
            "collected_at": facts.collected_at.isoformat(),
            "token": token.pk if token is not None else None,
            "token_kind": getattr(token, "kind", None),
            "controls": evaluation.controls,
        },
    )
    return UploadOutcome(host, evidence, False, evaluation)
