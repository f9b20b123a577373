from django.core.management.base import BaseCommand, CommandError

from mamori.audit.models import AuditEvent
from mamori.audit.services import verify_trail


class Command(BaseCommand):
    help = "Work with the audit trail. 'mamori audit verify' checks the hash chain."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("verify", help="check every entry's hash and the chain between them")

    def handle(self, *args, action, **options):
        broken = verify_trail()
        if broken is not None:
            raise CommandError(f"audit trail broken at {broken}")
        count = AuditEvent.objects.count()
        self.stdout.write(f"audit trail intact: {count} entries verified")
