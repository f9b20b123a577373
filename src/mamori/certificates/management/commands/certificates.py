import json

from django.core.management.base import BaseCommand
from django.utils import timezone

from mamori.certificates.models import Certificate


class Command(BaseCommand):
    help = "List certificates: 'mamori certificates list --format json|text [--status valid|expired|revoked]'."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list", help="list certificates")
        listing.add_argument("--format", choices=("json", "text"), default="text")
        listing.add_argument("--status", choices=("valid", "expired", "revoked"))

    def handle(self, *args, action, format, status=None, **options):
        today = timezone.localdate()
        certificates = Certificate.objects.order_by("issued_on", "number")
        if status:
            certificates = certificates.with_status(status, today)
        rows = [
            {
                "number": c.number,
                "organisation": c.organisation_name_ja,
                "organisation_en": c.organisation_name_en,
                "level": c.level,
                "status": c.status_on(today),
                "issued": c.issued_on.isoformat(),
                "expires": c.expires_on.isoformat(),
            }
            for c in certificates.iterator()
        ]
        if format == "json":
            self.stdout.write(json.dumps(rows, ensure_ascii=False, indent=2))
            return
        if not rows:
            self.stdout.write("no certificates")
        for row in rows:
            self.stdout.write(
                f"{row['number']:<20} {row['status']:<8} {row['level']:<5} "
                f"{row['issued']} → {row['expires']}  {row['organisation']}"
            )
