"""Helpers shared by the certificate tests (certificates with a chosen expiry date, e-mail read
back from files) and by the tests that run ``mamori`` or Celery in a subprocess against the test
database."""

from __future__ import annotations

import datetime as dt
import email
from email import policy
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import quote

from dateutil.relativedelta import relativedelta
from django.db import connection
from django.utils import timezone

from mamori.assessments.models import Assessment, Decision, Level, Outcome, State
from mamori.catalogue.services import current_catalogue
from mamori.certificates.models import Certificate
from mamori.certificates.services import issue_certificate


def certificate_expiring(world, organisation, expires_on: dt.date, *, level=Level.CE):
    """A certificate of ``organisation`` issued through the real ``issue_certificate`` service,
    then moved in time so it expires on ``expires_on``.

    The reminder logic only reads certificates, so the passed assessment behind it is written
    directly instead of being walked through answering and marking (seconds per certificate
    that would test nothing more here). Moving the dates rather than the clock keeps every
    other component on the real "today".
    """
    assessment = Assessment.objects.create(
        organisation=organisation,
        catalogue=current_catalogue(),
        certification_body=world.body,
        assessor=world.assessor,
        level=level,
        state=State.PASSED,
        started_by=world.assessor,
        complete_by=timezone.localdate() + relativedelta(months=6),
        decided_at=timezone.now(),
    )
    decision = Decision.objects.create(
        assessment=assessment, outcome=Outcome.PASS, assessor=world.assessor, summary="ok"
    )
    certificate = issue_certificate(world.assessor, assessment, decision)
    Certificate.objects.filter(pk=certificate.pk).update(
        issued_on=expires_on - relativedelta(months=12), expires_on=expires_on
    )
    certificate.refresh_from_db()
    return certificate


def read_mail_dir(folder: Path) -> list[EmailMessage]:
    """Every message Django's file e-mail backend wrote into ``folder``: one file per backend
    connection, messages separated by a line of 79 dashes."""
    separator = b"\n" + b"-" * 79 + b"\n"
    messages = []
    for path in sorted(folder.glob("*.log")):
        for chunk in path.read_bytes().split(separator):
            if chunk.strip():
                messages.append(email.message_from_bytes(chunk, policy=policy.default))
    return messages


def days_from_today(days: int) -> dt.date:
    return timezone.localdate() + dt.timedelta(days=days)


def database_url_of_test_db() -> str:
    """A DATABASE_URL naming the database this test process really uses (pytest-django's test
    database, not the configured one), so a subprocess reads and writes the same rows."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    assert connection.vendor == "postgresql", connection.vendor
    credentials = quote(settings["USER"] or "postgres")
    if settings["PASSWORD"]:
        credentials += ":" + quote(settings["PASSWORD"])
    host = settings["HOST"] or "127.0.0.1"
    port = settings["PORT"] or 5432
    return f"postgres://{credentials}@{host}:{port}/{settings['NAME']}"
