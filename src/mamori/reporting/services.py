"""Board packs and their owner: making a pack from the samples, naming the director who owns
cyber risk, signing a pack with a TOTP code, reminding the owner of an unsigned quarter.

Every change is audited in the transaction that makes it; the pack's files are rendered by a
task (``tasks.render_pack``), never in a request.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from django.db import IntegrityError, transaction
from django.db.models import Exists, Max, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from mamori.audit.services import record
from mamori.core import outbox
from mamori.organisations.models import Membership, Organisation, Role
from mamori.reporting import mapping, pack
from mamori.reporting.models import BoardPack, CyberRiskOwner, MetricSample

# A quarter's pack still unsigned this many days after the quarter ended: the owner is reminded.
REMINDER_DAYS = 30
# The tasks this module queues, by name (tasks.py imports this module).
RENDER_PACK = "mamori.reporting.tasks.render_pack"
SEND_PACK_REMINDER = "mamori.reporting.tasks.send_pack_reminder"
PACK_ROLES = frozenset({Role.APPLICANT_ADMIN, Role.BOARD_SIGNATORY})


class ReportingError(ValueError):
    """Refused, with a message for the person who asked."""


@lru_cache(maxsize=1)
def governance_mapping() -> mapping.GovernanceMapping:
    return mapping.load()


def organisation_facts(organisation: Organisation) -> dict:
    return {
        "id": organisation.pk,
        "name_ja": organisation.name_ja,
        "name_en": organisation.name_en,
        "corporate_number": organisation.corporate_number or "",
        "category": organisation.category,
    }


def series_for(organisation_id: int, period: pack.Period) -> dict[str, list]:
    """The stored samples a pack of ``period`` reads: four quarters up to its end and the
    period before it."""
    first = min(pack.quarters_ending(period)[0].first, period.before().first)
    found: dict[str, list] = {}
    rows = (
        MetricSample.objects.filter(
            organisation_id=organisation_id, day__gte=first, day__lte=period.last
        )
        .order_by("day")
        .values_list("day", "metric", "value")
    )
    for day, key, value in rows:
        found.setdefault(key, []).append((day, value))
    return found


def check_period(period: pack.Period, today: dt.date) -> None:
    if period.first > period.last:
        raise ReportingError(_("The period must begin on or before its last day."))
    if period.last >= today:
        raise ReportingError(
            _("A pack covers finished days: choose a period that ends before today.")
        )
    if (period.last - period.first).days > 366:
        raise ReportingError(_("A pack covers at most a year."))


def make_pack(
    actor, organisation: Organisation, period: pack.Period, *, quarterly: bool = False
) -> BoardPack:
    """The pack of ``period``: the newest one when its figures are unchanged, else a new
    version (a signed pack never changes). Its files are rendered by a task."""
    today = timezone.localdate()
    check_period(period, today)
    reviewed = BoardPack.objects.filter(
        organisation=organisation,
        period_from=period.before().first,
        period_to=period.before().last,
        signed_at__isnull=False,
    ).exists()
    content = pack.compose(
        organisation_facts(organisation),
        period,
        series_for(organisation.pk, period),
        governance_mapping(),
        previous_reviewed=reviewed,
    )
    same_period = BoardPack.objects.filter(
        organisation=organisation, period_from=period.first, period_to=period.last
    )
    newest = same_period.order_by("-version").first()
    if newest is not None and newest.digest == content["digest"]:
        return newest
    with transaction.atomic():
        version = (same_period.aggregate(v=Max("version"))["v"] or 0) + 1
        try:
            with transaction.atomic():
                made = BoardPack.objects.create(
                    organisation=organisation,
                    period_from=period.first,
                    period_to=period.last,
                    version=version,
                    quarterly=quarterly,
                    content=content,
                    digest=content["digest"],
                    created_by=actor if getattr(actor, "is_authenticated", False) else None,
                )
        except IntegrityError:
            # Made at the same moment by another request or the beat: that one stands.
            return same_period.order_by("-version").first()
        record(
            actor,
            "reporting.pack_made",
            made,
            organisation=organisation,
            details={
                "from": period.first.isoformat(),
                "to": period.last.isoformat(),
                "version": version,
                "digest": made.digest,
            },
        )
        # Seconds of rendering: never in the request that made the pack, even when the
        # embedded default runs tasks in this process (its worker's beat takes the row).
        outbox.enqueue_off_request(RENDER_PACK, made.pk)
    return made


def make_quarterly_packs(today: dt.date | None = None) -> int:
    """The last finished quarter's pack for every organisation with samples in it that has
    none yet. Returns how many were made."""
    today = today or timezone.localdate()
    quarter = pack.last_finished_quarter(today)
    have = set(
        BoardPack.objects.filter(period_from=quarter.first, period_to=quarter.last).values_list(
            "organisation_id", flat=True
        )
    )
    sampled = (
        MetricSample.objects.filter(day=quarter.last)
        .values_list("organisation_id", flat=True)
        .distinct()
    )
    made = 0
    for organisation in Organisation.objects.filter(pk__in=sampled).exclude(pk__in=have):
        make_pack(None, organisation, quarter, quarterly=True)
        made += 1
    return made


def owner_of(organisation_id: int) -> CyberRiskOwner | None:
    return (
        CyberRiskOwner.objects.select_related("user")
        .filter(organisation_id=organisation_id)
        .first()
    )


def name_owner(actor, access, organisation: Organisation, user_id: int) -> CyberRiskOwner:
    """The organisation's administrator names one of its board members owner of cyber risk."""
    if not access.has_role(organisation.pk, Role.APPLICANT_ADMIN):
        raise ReportingError(_("Only the organisation's administrators name the owner."))
    member = (
        Membership.objects.filter(
            organisation=organisation,
            user_id=user_id,
            role=Role.BOARD_SIGNATORY,
            user__is_active=True,
        )
        .select_related("user")
        .first()
    )
    if member is None:
        raise ReportingError(
            _("Choose a board member of this organisation: only a director can own cyber risk.")
        )
    with transaction.atomic():
        before = owner_of(organisation.pk)
        owner, _created = CyberRiskOwner.objects.update_or_create(
            organisation=organisation,
            defaults={"user": member.user, "named_by": actor, "named_at": timezone.now()},
        )
        record(
            actor,
            "reporting.owner_named",
            owner,
            organisation=organisation,
            details={
                "owner": member.user.get_username(),
                "before": before.user.get_username() if before else None,
            },
        )
    return owner


def sign_pack(
    user,
    access,
    pack_id: int,
    *,
    meeting_date: dt.date,
    minutes_reference: str,
    comment: str,
    code: str,
) -> BoardPack:
    """The owner signs a pack reviewed at a board meeting, confirming with a TOTP code. The
    audit entry holds the pack's digest; the pack cannot change afterwards."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from mamori.accounts import mfa

    board_pack = BoardPack.objects.visible_to(access).filter(pk=pack_id).first()
    if board_pack is None:
        raise BoardPack.DoesNotExist
    owner = owner_of(board_pack.organisation_id)
    if owner is None or owner.user_id != user.pk:
        raise ReportingError(_("Only the organisation's cyber-risk owner signs its board packs."))
    if meeting_date > timezone.localdate():
        raise ReportingError(_("The board meeting cannot be in the future."))
    if meeting_date < board_pack.period_to:
        raise ReportingError(_("The board meeting must be after the end of the pack's period."))
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        raise ReportingError(
            _("Set up an authenticator app first (Account, two-factor): signing asks for a code.")
        )
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().get(pk=device.pk)
        wait = mfa.seconds_to_wait(
            device.throttling_failure_count, device.throttling_failure_timestamp, timezone.now()
        )
        verified = not wait and device.verify_token(code)
    if wait:
        raise ReportingError(
            _("Too many wrong codes. Try again in %(seconds)d seconds.") % {"seconds": wait}
        )
    if not verified:
        raise ReportingError(_("That code is not valid. Check your app's clock and try again."))
    with transaction.atomic():
        locked = BoardPack.objects.select_for_update().get(pk=board_pack.pk)
        if locked.signed_at is not None:
            raise ReportingError(_("This pack is signed already."))
        locked.signed_at = timezone.now()
        locked.signed_by = user
        locked.signer_name = user.get_full_name() or user.get_username()
        locked.meeting_date = meeting_date
        locked.minutes_reference = minutes_reference
        locked.comment = comment
        event = record(
            user,
            "reporting.pack_signed",
            locked,
            organisation=locked.organisation_id,
            details={
                "digest": locked.digest,
                "from": locked.period_from.isoformat(),
                "to": locked.period_to.isoformat(),
                "version": locked.version,
                "meeting_date": meeting_date.isoformat(),
                "minutes_reference": minutes_reference,
            },
        )
        locked.signature_seq = event.seq
        locked.save(
            update_fields=[
                "signed_at",
                "signed_by",
                "signer_name",
                "meeting_date",
                "minutes_reference",
                "comment",
                "signature_seq",
            ]
        )
    return locked


def board_reviewed_on(organisation_id: int) -> dt.date | None:
    """The meeting date of the organisation's latest signed pack, for the public page."""
    return (
        BoardPack.objects.filter(organisation_id=organisation_id, signed_at__isnull=False)
        .order_by("-meeting_date")
        .values_list("meeting_date", flat=True)
        .first()
    )


def packs_needing_reminder(today: dt.date) -> list[BoardPack]:
    """Quarterly packs still unsigned 30 days after their quarter, not reminded of yet, whose
    quarter no other version of the pack has been signed for."""
    cutoff = today - dt.timedelta(days=REMINDER_DAYS)
    signed_version = BoardPack.objects.filter(
        organisation_id=OuterRef("organisation_id"),
        period_from=OuterRef("period_from"),
        period_to=OuterRef("period_to"),
        signed_at__isnull=False,
    )
    return list(
        BoardPack.objects.filter(
            quarterly=True, signed_at__isnull=True, reminded_at__isnull=True, period_to__lte=cutoff
        )
        .exclude(Exists(signed_version))
        .select_related("organisation")
        .order_by("pk")
    )
