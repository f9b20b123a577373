"""The Plus audit workflow: every change goes through here.

Each function locks the audit row, checks who may act and when, writes, and appends to the
audit trail in one transaction, so a refused or failed request leaves nothing half-written.
Who may see an audit at all is the queryset's job (``PlusAudit.objects.visible_to``).

Timing comes from the catalogue version of the basic certificate's assessment, with the
scheme's values as defaults (REQUIREMENTS-FACTS, "CE Plus"):

- ``plus_months`` (3): the Plus decision must be made within this many months of the basic
  pass (the basic certificate's issue date). After that no decision is possible.
- ``plus_retest_days`` (30): after a failed first round, the second sample must be drawn within
  this many days (and still before the deadline).
- ``plus_sample_working_days`` (3): testing must start within this many Japanese working days
  of the draw; an unused sample older than that is drawn again.
- ``plus_evidence_days`` (3): agent evidence older than this many days says nothing about a
  device during the audit (its TC2/TC3/TC7 result is unknown).
"""

from __future__ import annotations

import ipaddress
import unicodedata
from dataclasses import dataclass

from dateutil.relativedelta import relativedelta
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from mamori.audit.services import record
from mamori.certificates import services as certificates
from mamori.certificates.models import Certificate, Status
from mamori.core.errors import Conflict, MamoriError, NotAllowed, WrongState
from mamori.core.workdays import add_working_days
from mamori.organisations import conflicts
from mamori.organisations.access import Access
from mamori.organisations.models import Membership, Role
from mamori.plus import permissions, sampling, testcases
from mamori.plus.models import (
    ACTIVE_STATES,
    AuditState,
    Code,
    Device,
    DeviceCheck,
    DeviceKind,
    Outcome,
    PlusAudit,
    Result,
    SampledDevice,
    SampleRound,
    Source,
    TestAttachment,
    TestCase,
)
from mamori.verification.models import Host

TEXT_LIMIT = 4000
MAX_DEVICES = 5000
MAX_ADDRESS_LINES = 256


# --- Timing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    months: int
    retest_days: int
    sample_working_days: int
    evidence_days: int
    certificate_months: int

    @classmethod
    def of(cls, catalogue) -> Timing:
        values = catalogue.settings or {}
        return cls(
            months=int(values.get("plus_months", 3)),
            retest_days=int(values.get("plus_retest_days", 30)),
            sample_working_days=int(values.get("plus_sample_working_days", 3)),
            evidence_days=int(values.get("plus_evidence_days", 3)),
            certificate_months=int(values.get("certificate_months", 12)),
        )


def plus_deadline(certificate: Certificate):
    """The last day a Plus decision can follow this basic certificate."""
    timing = Timing.of(certificate.assessment.catalogue)
    return certificate.issued_on + relativedelta(months=timing.months)


# --- Helpers ------------------------------------------------------------------------------------


def _clean_text(value, field: str, *, limit: int = TEXT_LIMIT) -> str:
    text = (value or "").strip()
    if len(text) > limit:
        raise MamoriError(
            _("Keep it under %(limit)s characters.") % {"limit": f"{limit:,}"}, field=field
        )
    if any(unicodedata.category(char) == "Cc" and char not in "\n\r\t" for char in text) or any(
        0xD800 <= ord(char) <= 0xDFFF for char in text
    ):
        raise MamoriError(
            _("The text contains control characters; remove them."),
            field=field,
            code="control_characters",
        )
    return text


def _lock(audit_id: int) -> PlusAudit:
    return (
        PlusAudit.objects.select_for_update(of=("self",))
        .select_related("catalogue", "organisation", "base_certificate")
        .get(pk=audit_id)
    )


def _deadline_message(audit: PlusAudit) -> str:
    return _(
        "The deadline for this Plus audit passed on %(date)s (Cyber Essentials Plus must be "
        "completed within %(months)s months of the Cyber Essentials pass). No Plus decision is "
        "possible any more: pass Cyber Essentials again to start a new Plus audit."
    ) % {"date": formats.date_format(audit.deadline), "months": Timing.of(audit.catalogue).months}


def _require_active(audit: PlusAudit) -> None:
    if audit.state == AuditState.PASSED:
        raise WrongState(_("This Plus audit has passed; nothing can change any more."))
    if audit.state == AuditState.FAILED:
        raise WrongState(
            _(
                "This Plus audit failed its second sample; a new Cyber Essentials certificate "
                "is needed for another attempt."
            )
        )
    if audit.is_lapsed:
        raise WrongState(_deadline_message(audit), code="deadline_passed")


def _require_body_assessor(access: Access, audit: PlusAudit) -> None:
    if not permissions.is_reviewer(access, audit):
        raise NotAllowed(_("Only an assessor of the certification body can do this."))


def _require_assigned(access: Access, audit: PlusAudit) -> None:
    _require_body_assessor(access, audit)
    conflicts.require_impartial(access.user_id, audit.organisation_id)
    if not permissions.is_assigned(access, audit):
        raise NotAllowed(_("This Plus audit is assigned to another assessor; take it over first."))


def _state_change(actor, audit: PlusAudit, action: str, **details) -> None:
    record(
        actor,
        action,
        audit,
        organisation=audit.organisation,
        details={"state": audit.state, "round": audit.round, **details},
    )


# --- Requesting -----------------------------------------------------------------------------------


def eligible_certificates(access: Access) -> list[Certificate]:
    """Valid Cyber Essentials certificates this user may start a Plus audit for (their
    organisation's as its applicant administrator, or their body's as an assessor), without an
    audit yet and still within the time Plus allows after the basic pass."""
    today = timezone.localdate()
    candidates = (
        Certificate.objects.currently_valid(today)
        .filter(level="CE", assessment__isnull=False, plus_followup__isnull=True)
        .filter(
            Q(organisation_id__in=access.organisations_with({Role.APPLICANT_ADMIN}))
            | Q(certification_body_id__in=access.assessor_body_ids)
        )
        .select_related("assessment__catalogue", "certification_body")
        .order_by("-issued_on", "number")
    )
    return [certificate for certificate in candidates if plus_deadline(certificate) >= today]


def _pick_assessor(certification_body_id: int, preferred_id: int | None, organisation_id: int):
    """The assessor who certified the basic assessment if still an assessor of the body, else
    the one with the fewest Plus audits in progress; never one who holds a role in the audited
    organisation (``organisations.conflicts``)."""
    members = Membership.objects.filter(
        organisation_id=certification_body_id, role=Role.ASSESSOR, user__is_active=True
    ).exclude(
        user_id__in=Membership.objects.filter(organisation_id=organisation_id).values("user_id")
    )
    if preferred_id and members.filter(user_id=preferred_id).exists():
        return members.select_related("user").filter(user_id=preferred_id).first().user
    membership = (
        members.annotate(
            open_audits=Count(
                "user__plus_reviews", filter=Q(user__plus_reviews__state__in=ACTIVE_STATES)
            )
        )
        .order_by("open_audits", "created_at")
        .select_related("user")
        .first()
    )
    return membership.user if membership else None


def request_audit(user, access: Access, certificate_id: int) -> PlusAudit:
    """Start the Plus audit of a valid Cyber Essentials certificate: the applicant's
    administrator asks for it, or an assessor of the certifying body opens it."""
    with transaction.atomic():
        certificate = (
            Certificate.objects.select_for_update(of=("self",))
            .select_related("assessment__catalogue", "organisation", "certification_body")
            .filter(pk=certificate_id)
            .first()
        )
        if certificate is None:
            raise MamoriError(_("There is no such certificate."), field="certificate")
        is_admin = access.has_role(certificate.organisation_id, Role.APPLICANT_ADMIN)
        is_body = certificate.certification_body_id in access.assessor_body_ids
        if not (is_admin or is_body):
            raise NotAllowed(
                _(
                    "Only the organisation's applicant administrator or an assessor of the "
                    "certification body can start a Plus audit."
                )
            )
        if certificate.level != "CE" or certificate.assessment is None:
            raise MamoriError(
                _("Only a Cyber Essentials certificate can be followed by a Plus audit."),
                field="certificate",
            )
        status = certificate.status
        if status != Status.VALID:
            raise WrongState(
                _(
                    "Certificate %(number)s is %(status)s; a Plus audit needs a valid Cyber "
                    "Essentials certificate."
                )
                % {"number": certificate.number, "status": Status(status).label}
            )
        timing = Timing.of(certificate.assessment.catalogue)
        deadline = plus_deadline(certificate)
        if timezone.localdate() > deadline:
            raise WrongState(
                _(
                    "Cyber Essentials Plus must be completed within %(months)s months of the "
                    "Cyber Essentials pass; for certificate %(number)s that was %(date)s. Pass "
                    "Cyber Essentials again to start a Plus audit."
                )
                % {
                    "months": timing.months,
                    "number": certificate.number,
                    "date": formats.date_format(deadline),
                },
                code="deadline_passed",
            )
        if PlusAudit.objects.filter(base_certificate=certificate).exists():
            raise WrongState(
                _("A Plus audit of certificate %(number)s already exists.")
                % {"number": certificate.number},
                code="exists",
            )
        if is_body and not is_admin:
            conflicts.require_impartial(user.pk, certificate.organisation_id)
        assessor = (
            user
            if is_body and not is_admin
            else _pick_assessor(
                certificate.certification_body_id,
                certificate.assessment.assessor_id,
                certificate.organisation_id,
            )
        )
        try:
            with transaction.atomic():
                audit = PlusAudit.objects.create(
                    organisation=certificate.organisation,
                    base_certificate=certificate,
                    certification_body=certificate.certification_body,
                    catalogue=certificate.assessment.catalogue,
                    assessor=assessor,
                    requested_by=user,
                    scope_text=certificate.scope_text,
                    deadline=deadline,
                )
        except IntegrityError:
            raise Conflict(
                _("Someone else started the Plus audit of this certificate a moment ago.")
            ) from None
        _state_change(
            user,
            audit,
            "plus.requested",
            certificate=certificate.number,
            deadline=deadline.isoformat(),
            assessor=assessor.pk if assessor else None,
        )
    return audit


def take_over(user, access: Access, audit_id: int) -> PlusAudit:
    with transaction.atomic():
        audit = _lock(audit_id)
        _require_body_assessor(access, audit)
        conflicts.require_impartial(user.pk, audit.organisation_id)
        _require_active(audit)
        if audit.assessor_id == access.user_id:
            raise WrongState(_("You are already the assessor of this Plus audit."))
        previous = audit.assessor_id
        audit.assessor = user
        audit.save(update_fields=["assessor", "updated_at"])
        _state_change(user, audit, "plus.assigned", previous=previous, assessor=user.pk)
    return audit


# --- The frame: public addresses, devices and their kinds -------------------------------------


def parse_addresses(text: str) -> list[str]:
    """Declared public addresses and ranges, one per line ('#' starts a comment), normalised
    (``203.0.113.7``, ``2001:db8::/48``) and de-duplicated. Private, loopback, link-local and
    other non-global addresses are refused: an external scan cannot reach them."""
    addresses: list[str] = []
    lines = [line.split("#", 1)[0].strip() for line in (text or "").splitlines()]
    lines = [line for line in lines if line]
    if len(lines) > MAX_ADDRESS_LINES:
        raise MamoriError(
            _("List at most %(count)s addresses or ranges.") % {"count": MAX_ADDRESS_LINES},
            field="public_addresses",
        )
    for number, line in enumerate(lines, start=1):
        try:
            network = ipaddress.ip_network(line, strict=False)
        except ValueError:
            raise MamoriError(
                _("Line %(line)s: '%(value)s' is not an IP address or range.")
                % {"line": number, "value": line[:60]},
                field="public_addresses",
            ) from None
        if not network.is_global:
            raise MamoriError(
                _(
                    "Line %(line)s: %(value)s is not a public address; the external scan covers "
                    "addresses reachable from the internet."
                )
                % {"line": number, "value": str(network)},
                field="public_addresses",
            )
        single = network.num_addresses == 1
        canonical = str(network.network_address) if single else str(network)
        if canonical not in addresses:
            addresses.append(canonical)
    return addresses


def set_public_addresses(user, access: Access, audit_id: int, text: str) -> PlusAudit:
    addresses = parse_addresses(_clean_text(text, "public_addresses", limit=TEXT_LIMIT))
    with transaction.atomic():
        audit = _lock(audit_id)
        if not permissions.may_edit_frame(access, audit):
            raise NotAllowed(
                _("Only the organisation's editors and the assigned assessor can change this.")
            )
        _require_active(audit)
        before = audit.public_addresses
        audit.public_addresses = "\n".join(addresses)
        if before == audit.public_addresses:
            return audit
        audit.save(update_fields=["public_addresses", "updated_at"])
        record(
            user,
            "plus.addresses_changed",
            audit,
            organisation=audit.organisation,
            details={"count": len(addresses)},
            before=before,
            after=audit.public_addresses,
        )
    return audit


def host_os_build(host: Host) -> str:
    """An agent host's OS build: the os-release id and version, e.g. "debian 12", "ubuntu
    24.04", "rocky 9.4" (Linux distributions have no editions that change what is tested).
    Windows devices, whose editions and feature versions are separate builds, come from the
    devices listed by hand (e.g. "Windows 11 Pro 23H2")."""
    build = f"{host.os_id} {host.os_version}".strip()
    return build or host.os_pretty_name[:120]


def _clean_line(value, field: str, limit: int, required) -> str:
    text = " ".join((value or "").split())
    if not text:
        raise MamoriError(required, field=field)
    if len(text) > limit:
        raise MamoriError(_("Keep it under %(limit)s characters.") % {"limit": limit}, field=field)
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in text):
        raise MamoriError(
            _("The text contains control characters; remove them."),
            field=field,
            code="control_characters",
        )
    return text


def add_device(user, access: Access, audit_id: int, name: str, os_build: str, kind: str) -> Device:
    """List a device without the agent (a Windows laptop, a network appliance's OS)."""
    name = _clean_line(name, "name", 255, _("Name the device."))
    os_build = _clean_line(
        os_build, "os_build", 120, _("Give the operating system and its build or version.")
    )
    if kind not in DeviceKind.values:
        raise MamoriError(_("Choose end-user device or server."), field="kind")
    with transaction.atomic():
        audit = _lock(audit_id)
        if not permissions.may_edit_frame(access, audit):
            raise NotAllowed(
                _("Only the organisation's editors and the assigned assessor can list devices.")
            )
        _require_active(audit)
        if audit.devices.filter(manual=True).count() >= MAX_DEVICES:
            raise MamoriError(
                _("An audit can list at most %(count)s devices by hand.") % {"count": MAX_DEVICES}
            )
        if audit.devices.filter(manual=True, name__iexact=name).exists():
            raise MamoriError(
                _("A device named %(name)s is already listed.") % {"name": name},
                field="name",
                code="duplicate",
            )
        # The assessor's word on the kind is the confirmation; the applicant's is a proposal.
        confirmed = permissions.is_assigned(access, audit)
        try:
            with transaction.atomic():
                device = Device.objects.create(
                    audit=audit,
                    manual=True,
                    name=name,
                    os_build=os_build,
                    kind=kind,
                    kind_confirmed_by=user if confirmed else None,
                    added_by=user,
                )
        except IntegrityError:
            raise Conflict(_("A device with this name was just listed.")) from None
        record(
            user,
            "plus.device_added",
            device,
            organisation=audit.organisation,
            details={"audit": audit.pk, "os_build": os_build, "kind": kind, "confirmed": confirmed},
        )
    return device


def remove_device(user, access: Access, audit_id: int, device_id: int) -> None:
    with transaction.atomic():
        audit = _lock(audit_id)
        if not permissions.may_edit_frame(access, audit):
            raise NotAllowed(
                _("Only the organisation's editors and the assigned assessor can remove devices.")
            )
        _require_active(audit)
        device = audit.devices.filter(pk=device_id, manual=True).first()
        if device is None:
            raise MamoriError(_("There is no such device in this audit."), field="device")
        sampled_in = list(device.samplings.values_list("round__number", flat=True))
        if sampled_in:
            raise WrongState(
                _("%(name)s was sampled in round %(round)s; it stays on record.")
                % {"name": device.name, "round": sampled_in[0]}
            )
        record(
            user,
            "plus.device_removed",
            device,
            organisation=audit.organisation,
            details={"audit": audit.pk, "device": device.pk},
            before={"name": device.name, "os_build": device.os_build, "kind": device.kind},
        )
        device.delete()


@dataclass
class FrameRow:
    """One device of the frame as the pages show it; ``field`` names its kind in the form."""

    field: str
    name: str
    os_build: str
    kind: str
    confirmed: bool
    manual: bool
    host: Host | None
    device: Device | None

    @property
    def kind_label(self) -> str:
        return DeviceKind(self.kind).label if self.kind in DeviceKind.values else ""


def frame(audit: PlusAudit) -> list[FrameRow]:
    """The sampling frame now: the organisation's in-scope agent hosts and the devices listed
    by hand. Two queries."""
    devices = list(audit.devices.select_related("kind_confirmed_by"))
    by_host = {device.host_id: device for device in devices if device.host_id}
    rows = []
    hosts = Host.objects.filter(organisation_id=audit.organisation_id, in_scope=True).order_by(
        "hostname", "pk"
    )
    for host in hosts:
        device = by_host.get(host.pk)
        rows.append(
            FrameRow(
                field=f"host-{host.pk}",
                name=host.hostname,
                os_build=host_os_build(host),
                kind=device.kind if device else "",
                confirmed=bool(device and device.kind and device.kind_confirmed_by_id),
                manual=False,
                host=host,
                device=device,
            )
        )
    for device in devices:
        if device.manual:
            rows.append(
                FrameRow(
                    field=f"device-{device.pk}",
                    name=device.name,
                    os_build=device.os_build,
                    kind=device.kind,
                    confirmed=bool(device.kind and device.kind_confirmed_by_id),
                    manual=True,
                    host=None,
                    device=device,
                )
            )
    return rows


def confirm_kinds(user, access: Access, audit_id: int, kinds: dict[str, str]) -> int:
    """The assessor confirms (or sets) whether each device is an end-user device or a server.
    ``kinds`` maps a frame row's field (``host-<id>``, ``device-<id>``) to a kind; returns how
    many were confirmed."""
    if not kinds:
        raise MamoriError(_("Choose the kind of at least one device."), field="kinds")
    for key, kind in kinds.items():
        if kind not in DeviceKind.values:
            raise MamoriError(
                _("Choose end-user device or server for %(device)s.") % {"device": key[:40]},
                field="kinds",
            )
    with transaction.atomic():
        audit = _lock(audit_id)
        _require_assigned(access, audit)
        _require_active(audit)
        rows = {row.field: row for row in frame(audit)}
        unknown = sorted(set(kinds) - set(rows))
        if unknown:
            raise MamoriError(
                _("%(device)s is not in this audit's frame.") % {"device": unknown[0][:40]},
                field="kinds",
            )
        changed = {}
        for key, kind in kinds.items():
            row = rows[key]
            device = row.device
            if device is None:
                device = Device(
                    audit=audit, host=row.host, manual=False, name=row.name[:255], added_by=user
                )
            if device.kind == kind and device.kind_confirmed_by_id and device.pk:
                continue
            changed[key] = {"from": device.kind, "to": kind}
            device.kind = kind
            device.kind_confirmed_by = user
            if not device.manual:
                device.name = row.name[:255]
                device.os_build = row.os_build[:120]
            device.save()
        if changed:
            record(
                user,
                "plus.kinds_confirmed",
                audit,
                organisation=audit.organisation,
                details={"changed": changed},
            )
    return len(changed)


# --- Sampling -------------------------------------------------------------------------------------


def _sample_frame(audit: PlusAudit) -> list[tuple[Device, sampling.FrameEntry]]:
    rows = frame(audit)
    if not rows:
        raise WrongState(
            _(
                "The frame is empty: no in-scope host has reported evidence and no device is "
                "listed by hand."
            ),
            code="empty_frame",
        )
    unconfirmed = [row for row in rows if not row.confirmed]
    if unconfirmed:
        raise WrongState(
            _("Confirm the kind of every device first: %(count)s to go, first %(name)s.")
            % {"count": len(unconfirmed), "name": unconfirmed[0].name},
            code="kinds_unconfirmed",
        )
    entries = []
    for row in rows:
        device = row.device
        if not device.manual and device.os_build != row.os_build[:120]:
            device.os_build = row.os_build[:120]  # the build as it is at the draw
            device.save(update_fields=["os_build"])
        entries.append((device, sampling.FrameEntry(device.frame_key, device.os_build, row.kind)))
    return entries


def draw_sample(user, access: Access, audit_id: int) -> SampleRound:
    """Draw the random sample of a round: the first, a second one after a failed first round,
    or the same round's again when its sample was not used in time."""
    with transaction.atomic():
        audit = _lock(audit_id)
        _require_assigned(access, audit)
        _require_active(audit)
        timing = Timing.of(audit.catalogue)
        today = timezone.localdate()
        current = audit.current_round
        if audit.state == AuditState.RETEST:
            if audit.retest_due and today > audit.retest_due:
                raise WrongState(
                    _(
                        "The time to fix the findings and test a second sample ended on "
                        "%(date)s; a new Cyber Essentials certificate is needed."
                    )
                    % {"date": formats.date_format(audit.retest_due)},
                    code="retest_closed",
                )
            number, redraw = audit.round + 1, False
        elif current is None:
            number, redraw = 1, False
        elif current.testing_started_at is None and today > current.test_by:
            number, redraw = current.number, True
        else:
            raise WrongState(
                _(
                    "Round %(round)s is being tested. A new sample is drawn only after a failed "
                    "round, or when a sample was not used within %(days)s working days."
                )
                % {"round": current.number, "days": timing.sample_working_days},
                code="round_in_progress",
            )
        entries = _sample_frame(audit)
        drawn = sampling.draw([entry for _device, entry in entries], sampling.new_seed())
        devices = {device.frame_key: device for device, _entry in entries}
        kinds = {entry.key: entry.kind for _device, entry in entries}
        now = timezone.now()
        fields = {
            "seed": drawn.seed,
            "frame_digest": drawn.frame_digest,
            "frame_size": drawn.frame_size,
            "drawn_at": now,
            "drawn_by": user,
            "test_by": add_working_days(today, timing.sample_working_days),
        }
        if redraw:
            sample_round = current
            sample_round.sampled.all().delete()
            sample_round.test_cases.all().delete()
            for name, value in fields.items():
                setattr(sample_round, name, value)
            sample_round.draws += 1
            sample_round.save()
        else:
            sample_round = SampleRound.objects.create(audit=audit, number=number, **fields)
        SampledDevice.objects.bulk_create(
            SampledDevice(
                round=sample_round,
                device=devices[key],
                os_build=devices[key].os_build,
                kind=kinds[key],
            )
            for key in drawn.chosen
        )
        TestCase.objects.bulk_create(
            TestCase(round=sample_round, code=code) for code in testcases.ALL_CASES
        )
        audit.round = number
        audit.state = AuditState.OPEN
        audit.save(update_fields=["round", "state", "updated_at"])
        record(
            user,
            "plus.sample_drawn",
            sample_round,
            organisation=audit.organisation,
            details={
                "audit": audit.pk,
                "round": number,
                "draw": sample_round.draws,
                "test_by": sample_round.test_by.isoformat(),
                **drawn.as_record(),
            },
        )
    return sample_round


# --- Testing --------------------------------------------------------------------------------------


def _open_round(audit: PlusAudit) -> SampleRound:
    sample_round = audit.current_round
    if sample_round is None:
        raise WrongState(_("Draw the sample first."), code="no_sample")
    if sample_round.outcome or audit.state != AuditState.OPEN:
        raise WrongState(
            _("Round %(round)s has been decided.") % {"round": sample_round.number},
            code="already_decided",
        )
    return sample_round


def _start_testing(sample_round: SampleRound, audit: PlusAudit) -> None:
    """Testing must start within the working days the catalogue allows after the draw; the
    first recorded result marks the start."""
    if sample_round.testing_started_at is not None:
        return
    timing = Timing.of(audit.catalogue)
    if timezone.localdate() > sample_round.test_by:
        raise WrongState(
            _(
                "The sample drawn on %(date)s was not tested within %(days)s working days; draw "
                "a new sample."
            )
            % {
                "date": formats.date_format(timezone.localdate(sample_round.drawn_at)),
                "days": timing.sample_working_days,
            },
            code="sample_stale",
        )
    sample_round.testing_started_at = timezone.now()
    sample_round.save(update_fields=["testing_started_at"])


def _refresh_results(sample_round: SampleRound) -> dict[str, str]:
    """Recompute TC2, TC3 and TC7 from the device checks; returns every test case's result."""
    expected = sample_round.sampled.count()
    statuses: dict[str, list[str]] = {code: [] for code in testcases.EVIDENCE_CASES}
    for code, status in DeviceCheck.objects.filter(sampled__round=sample_round).values_list(
        "code", "status"
    ):
        statuses[code].append(status)
    for code in testcases.EVIDENCE_CASES:
        TestCase.objects.filter(round=sample_round, code=code).update(
            result=testcases.aggregate(statuses[code], expected)
        )
    return dict(TestCase.objects.filter(round=sample_round).values_list("code", "result"))


def fill_from_evidence(user, access: Access, audit_id: int) -> dict[str, dict[str, int]]:
    """TC2, TC3 and TC7 for every sampled agent host, from its latest evaluation. A result the
    assessor overrode keeps the override; the evidence's own verdict is kept beside it."""
    with transaction.atomic():
        audit = _lock(audit_id)
        _require_assigned(access, audit)
        _require_active(audit)
        sample_round = _open_round(audit)
        _start_testing(sample_round, audit)
        timing = Timing.of(audit.catalogue)
        now = timezone.now()
        sampled = list(
            sample_round.sampled.filter(device__manual=False).select_related(
                "device__host__latest_evaluation", "device__host__latest_evidence"
            )
        )
        if not sampled:
            raise WrongState(
                _("No agent host was sampled; record the devices' results by hand."),
                code="no_agent_hosts",
            )
        existing = {
            (check.sampled_id, check.code): check
            for check in DeviceCheck.objects.filter(sampled__in=sampled)
        }
        counts = {code: {"pass": 0, "fail": 0, "unknown": 0} for code in testcases.EVIDENCE_CASES}
        evaluations = []
        for item in sampled:
            host = item.device.host
            evaluation = host.latest_evaluation if host else None
            evidence = host.latest_evidence if host else None
            if evaluation is not None and evaluation.evidence_id != getattr(evidence, "pk", None):
                evaluation = None  # an evaluation of an older collection says nothing now
            if evaluation is not None:
                evaluations.append(evaluation.pk)
            # The documents as they stand now (vulnerabilities and their checks patched by
            # re-matches since the upload), in Japanese and with the English findings.
            document = evaluation.localised_result("ja") if evaluation else None
            english = evaluation.localised_result("en")["findings"] if evaluation else ()
            for code in testcases.EVIDENCE_CASES:
                verdict = testcases.judge(
                    code,
                    document,
                    findings_en=english,
                    collected_at=evidence.collected_at if evaluation else None,
                    now=now,
                    max_age_days=timing.evidence_days,
                )
                counts[code][verdict.status] += 1
                check = existing.get((item.pk, code))
                if check is None:
                    check = DeviceCheck(sampled=item, code=code, source=Source.EVIDENCE)
                if not check.override_reason:
                    check.status = verdict.status
                    check.source = Source.EVIDENCE
                    check.recorded_by = user
                    check.recorded_at = now
                check.evidence_status = verdict.status
                check.evaluation = evaluation
                check.facts = verdict.facts
                check.save()
        results = _refresh_results(sample_round)
        record(
            user,
            "plus.evidence_filled",
            sample_round,
            organisation=audit.organisation,
            details={
                "audit": audit.pk,
                "round": sample_round.number,
                "counts": counts,
                "evaluations": sorted(evaluations),
                "results": {code: results[code] for code in testcases.EVIDENCE_CASES},
            },
        )
    return counts


def _checked_upload(upload):
    from mamori.assessments.uploads import inspect_upload

    return inspect_upload(upload)


def _attach(
    user, test_case: TestCase, upload, checked, stored: list[TestAttachment]
) -> TestAttachment:
    attachment = TestAttachment(
        test_case=test_case,
        original_name=checked.name,
        content_type=checked.content_type,
        size=checked.size,
        sha256=checked.sha256,
        uploaded_by=user,
    )
    attachment.file.save(checked.name, upload, save=False)
    stored.append(attachment)
    attachment.save()
    return attachment


class _FilesOnFailure:
    """Files written inside a transaction are removed again when the block fails, so a refused
    or failed request leaves no orphan file behind its rolled-back row."""

    def __init__(self) -> None:
        self.stored: list[TestAttachment] = []

    def __enter__(self) -> list[TestAttachment]:
        return self.stored

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is not None:
            for attachment in self.stored:
                attachment.file.delete(save=False)


def record_test_case(
    user, access: Access, audit_id: int, code: str, result: str, notes: str, upload=None
) -> TestCase:
    """TC1, TC4, TC5 or TC6: the assessor's result, notes and optionally a supporting file."""
    if code not in testcases.ASSESSOR_CASES:
        raise MamoriError(
            _("TC2, TC3 and TC7 come from the devices' results; record them per device."),
            field="code",
        )
    if result not in (Result.PASS, Result.FAIL):
        raise MamoriError(_("Choose pass or fail."), field="result")
    notes = _clean_text(notes, "notes")
    if result == Result.FAIL and not notes:
        raise MamoriError(
            _("Say what failed and what to fix, so the applicant can act on it."), field="notes"
        )
    checked = _checked_upload(upload) if upload is not None else None
    with _FilesOnFailure() as stored, transaction.atomic():
        audit = _lock(audit_id)
        _require_assigned(access, audit)
        _require_active(audit)
        sample_round = _open_round(audit)
        _start_testing(sample_round, audit)
        test_case = TestCase.objects.select_for_update().get(round=sample_round, code=code)
        before = test_case.result
        test_case.result = result
        test_case.notes = notes
        test_case.recorded_by = user
        test_case.recorded_at = timezone.now()
        test_case.save()
        attachment = _attach(user, test_case, upload, checked, stored) if checked else None
        record(
            user,
            "plus.test_recorded",
            sample_round,
            organisation=audit.organisation,
            details={
                "audit": audit.pk,
                "round": sample_round.number,
                "code": code,
                "from": before,
                "to": result,
                "attachment": attachment.pk if attachment else None,
                "sha256": checked.sha256 if checked else None,
            },
            after={"notes": notes},
        )
    return test_case


def add_test_attachment(user, access: Access, audit_id: int, code: str, upload) -> TestAttachment:
    if code not in Code.values:
        raise MamoriError(_("There is no such test case."), field="code")
    checked = _checked_upload(upload)
    with _FilesOnFailure() as stored, transaction.atomic():
        audit = _lock(audit_id)
        _require_assigned(access, audit)
        _require_active(audit)
        sample_round = _open_round(audit)
        _start_testing(sample_round, audit)
        test_case = TestCase.objects.get(round=sample_round, code=code)
        attachment = _attach(user, test_case, upload, checked, stored)
        record(
            user,
            "plus.attachment_added",
            sample_round,
            organisation=audit.organisation,
            details={
                "audit": audit.pk,
                "round": sample_round.number,
                "code": code,
                "attachment": attachment.pk,
                "sha256": checked.sha256,
                "size": checked.size,
            },
        )
    return attachment


def record_device_check(
    user,
    access: Access,
    audit_id: int,
    sampled_id: int,
    code: str,
    status: str,
    notes: str = "",
    reason: str = "",
) -> DeviceCheck:
    """TC2, TC3 or TC7 on one sampled device, by the assessor: the result for a device
    without the agent, or an override of what an agent host's evidence says, which needs a
    written reason."""
    if code not in testcases.EVIDENCE_CASES:
        raise MamoriError(_("Only TC2, TC3 and TC7 are recorded per device."), field="code")
    if status not in (Result.PASS, Result.FAIL):
        raise MamoriError(_("Choose pass or fail."), field="status")
    notes = _clean_text(notes, "notes")
    reason = _clean_text(reason, "reason")
    if status == Result.FAIL and not notes:
        raise MamoriError(
            _("Say what failed and what to fix, so the applicant can act on it."), field="notes"
        )
    with transaction.atomic():
        audit = _lock(audit_id)
        _require_assigned(access, audit)
        _require_active(audit)
        sample_round = _open_round(audit)
        item = (
            SampledDevice.objects.select_related("device")
            .filter(pk=sampled_id, round=sample_round)
            .first()
        )
        if item is None:
            raise MamoriError(
                _("That device is not in the current sample."), field="device", code="not_sampled"
            )
        agent = not item.device.manual
        if agent and not reason:
            raise MamoriError(
                _(
                    "This device reports through the agent: its result comes from the evidence. "
                    "To record another result, give the reason for overriding it."
                ),
                field="reason",
                code="reason_required",
            )
        _start_testing(sample_round, audit)
        check = DeviceCheck.objects.filter(sampled=item, code=code).first()
        before = check.status if check else None
        if check is None:
            check = DeviceCheck(sampled=item, code=code)
        check.status = status
        check.source = Source.ASSESSOR
        check.notes = notes
        check.override_reason = reason if agent else ""
        check.recorded_by = user
        check.recorded_at = timezone.now()
        check.save()
        results = _refresh_results(sample_round)
        record(
            user,
            "plus.check_overridden" if agent else "plus.check_recorded",
            sample_round,
            organisation=audit.organisation,
            details={
                "audit": audit.pk,
                "round": sample_round.number,
                "code": code,
                "device": item.device_id,
                "from": before,
                "to": status,
                "evidence": check.evidence_status or None,
                "result": results[code],
            },
            after={"notes": notes, "reason": reason},
        )
    return check


# --- Decision -------------------------------------------------------------------------------------


def _issue_certificate(user, audit: PlusAudit, decided_at) -> Certificate:
    """The Plus certificate: level PLUS, the basic certificate's scope and requirements, issued
    on the decision day and valid for the catalogue's ``certificate_months`` from then (both
    levels are valid for twelve months from their own issue in the scheme this follows)."""
    base = audit.base_certificate
    return certificates.issue(
        user,
        level="PLUS",
        organisation=audit.organisation,
        certification_body=audit.certification_body,
        scope_text=audit.scope_text,
        catalogue_version=base.catalogue_version,
        issued_on=timezone.localdate(decided_at),
        months=Timing.of(audit.catalogue).certificate_months,
        plus_audit=audit,
        details={"plus_audit": audit.pk, "base_certificate": base.number},
    )


def decide(user, access: Access, audit_id: int, outcome: str, summary: str) -> SampleRound:
    """Pass (every test case of the round passed: the Plus certificate is issued) or fail
    (some failed: after a first round the applicant fixes the findings estate-wide and a second
    random sample is tested; after a second, the audit has failed)."""
    if outcome not in Outcome.values:
        raise MamoriError(_("Choose pass or fail."), field="outcome")
    summary = _clean_text(summary, "summary")
    with transaction.atomic():
        audit = _lock(audit_id)
        _require_body_assessor(access, audit)
        current = audit.current_round
        if current is not None and current.outcome:
            raise WrongState(
                _("Round %(round)s has already been decided.") % {"round": current.number},
                code="already_decided",
            )
        _require_assigned(access, audit)
        _require_active(audit)
        base = audit.base_certificate
        if base.status != Status.VALID:
            raise WrongState(
                _(
                    "The Cyber Essentials certificate %(number)s is %(status)s; no Plus "
                    "certificate can be issued on it."
                )
                % {"number": base.number, "status": Status(base.status).label},
                code="base_not_valid",
            )
        if current is None:
            raise WrongState(_("Draw a sample and run the test cases first."), code="no_sample")
        results = dict(current.test_cases.values_list("code", "result"))
        blockers = testcases.decision_blockers(results)
        if blockers:
            raise WrongState(
                _("%(count)s test cases are not finished (pending or undecided): %(codes)s.")
                % {"count": len(blockers), "codes": ", ".join(blockers)},
                code="unfinished",
            )
        failed = testcases.failed_cases(results)
        if outcome == Outcome.PASS and failed:
            raise WrongState(
                _("It cannot pass: %(codes)s failed.") % {"codes": ", ".join(failed)},
                code="cannot_pass",
            )
        if outcome == Outcome.FAIL and not failed:
            raise WrongState(
                _("Every test case passed; record the failing one first to fail it."),
                code="nothing_failed",
            )
        now = timezone.now()
        current.outcome = outcome
        current.summary = summary
        current.decided_at = now
        current.decided_by = user
        current.save()
        before = audit.state
        if outcome == Outcome.PASS:
            audit.state = AuditState.PASSED
            audit.decided_at = now
            audit.retest_due = None
        elif current.number == 1:
            audit.state = AuditState.RETEST
            audit.retest_due = min(
                audit.deadline,
                timezone.localdate(now)
                + relativedelta(days=Timing.of(audit.catalogue).retest_days),
            )
        else:
            audit.state = AuditState.FAILED
            audit.decided_at = now
            audit.retest_due = None
        audit.save()
        _state_change(
            user,
            audit,
            "plus.decided",
            previous=before,
            outcome=outcome,
            failed=failed,
            retest_due=audit.retest_due.isoformat() if audit.retest_due else None,
        )
        if outcome == Outcome.PASS:
            _issue_certificate(user, audit, now)
    return current
