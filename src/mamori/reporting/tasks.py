"""Background work of reporting. Every task has the effect of running once however often it runs.

- ``sample_days`` (beat, hourly): the metric samples of yesterday (and of the finished days
  before it the beat missed), each stored and sealed once (``sampling.sample_finished_days``);
  a day already sealed costs one query.
- ``quarterly_packs`` (beat, hourly): once a quarter is over and sampled, its pack for every
  organisation (``services.make_quarterly_packs``); and the reminder to the cyber-risk owner of
  a quarter's pack still unsigned 30 days after the quarter ended (``send_pack_reminder``).
- ``render_pack(pack_id)``: the pack's PDF and XLSX in Japanese and English, stored once.
"""

from __future__ import annotations

import logging

from django.core.files.base import ContentFile
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation

from mamori.celery import app
from mamori.core import outbox
from mamori.reporting import services

log = logging.getLogger(__name__)


@app.task(name="mamori.reporting.tasks.sample_days")
def sample_days() -> list[str]:
    from mamori.reporting import sampling

    return [result.day.isoformat() for result in sampling.sample_finished_days()]


@app.task(name=services.RENDER_PACK)
def render_pack(pack_id: int) -> bool:
    """Render the pack's four files outside any lock, then store them only if it has none yet
    (a second run leaves the stored files alone)."""
    from mamori.reporting import render
    from mamori.reporting.models import BoardPack

    board_pack = BoardPack.objects.filter(pk=pack_id).first()
    if board_pack is None or board_pack.rendered_at is not None:
        return False
    files = {}
    for language in ("ja", "en"):
        files[f"pdf_{language}"] = render.pdf(board_pack.content, language)
        files[f"xlsx_{language}"] = render.xlsx(board_pack.content, language)
    with transaction.atomic():
        locked = BoardPack.objects.select_for_update().filter(pk=pack_id).first()
        if locked is None or locked.rendered_at is not None:
            return False
        stem = f"board-pack-{locked.organisation_id}-{locked.period_from}-{locked.period_to}-v{locked.version}"
        for field, data in files.items():
            kind, language = field.split("_")
            getattr(locked, field).save(f"{stem}-{language}.{kind}", ContentFile(data), save=False)
        locked.rendered_at = timezone.now()
        # Should the row not commit, no record names the files and the clean-up removes them.
        locked.save(update_fields=[*files, "rendered_at"])
    return True


@app.task(name="mamori.reporting.tasks.quarterly_packs")
def quarterly_packs() -> dict:
    made = services.make_quarterly_packs()
    reminded = 0
    for board_pack in services.packs_needing_reminder(timezone.localdate()):
        with transaction.atomic():
            from mamori.reporting.models import BoardPack

            claimed = BoardPack.objects.filter(pk=board_pack.pk, reminded_at__isnull=True).update(
                reminded_at=timezone.now()
            )
            if claimed:
                outbox.enqueue(services.SEND_PACK_REMINDER, board_pack.pk)
                reminded += 1
    return {"made": made, "reminded": reminded}


@app.task(name=services.SEND_PACK_REMINDER)
def send_pack_reminder(pack_id: int) -> int:
    """E-mail the cyber-risk owner (in their language) that a quarter's pack waits for their
    review and signature; without an owner, the organisation's administrators, so that one
    gets named. Once per person."""
    from mamori.audit.services import record
    from mamori.core.mail import send_once
    from mamori.core.site import absolute_url
    from mamori.organisations.models import Membership, Role
    from mamori.reporting.models import BoardPack

    board_pack = BoardPack.objects.select_related("organisation").filter(pk=pack_id).first()
    if board_pack is None or board_pack.signed_at is not None:
        return 0
    owner = services.owner_of(board_pack.organisation_id)
    if owner is not None and owner.user.is_active and owner.user.email:
        recipients = [owner.user]
    else:
        recipients = [
            membership.user
            for membership in Membership.objects.filter(
                organisation_id=board_pack.organisation_id,
                role=Role.APPLICANT_ADMIN,
                user__is_active=True,
            )
            .exclude(user__email="")
            .select_related("user")
        ]
    url = absolute_url(reverse("reporting:pack", args=[board_pack.pk]))
    sent = 0
    for user in recipients:
        with translation.override(user.language or "ja"):
            context = {"pack": board_pack, "user": user, "url": url, "owner": owner}
            subject = render_to_string("reporting/email/reminder_subject.txt", context).strip()
            body = render_to_string("reporting/email/reminder_body.txt", context)
        sent += send_once(
            f"board-pack-reminder:{board_pack.pk}:user:{user.pk}",
            to=user.email,
            subject=subject,
            body=body,
        )
    if sent:
        record(
            None,
            "reporting.pack_reminder_sent",
            board_pack,
            organisation=board_pack.organisation_id,
            details={"recipients": len(recipients)},
        )
    return sent
