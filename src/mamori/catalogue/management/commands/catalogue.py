from django.core.management.base import BaseCommand, CommandError

from mamori.catalogue.loader import CatalogueProblems, load_catalogue
from mamori.catalogue.models import CatalogueInUse
from mamori.catalogue.services import bundled_files, sync_catalogue


class Command(BaseCommand):
    help = "Check requirement catalogue files, or load them into the database."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        check = sub.add_parser("check", help="validate catalogue files; prints file:line: problem")
        check.add_argument("files", nargs="+", metavar="FILE")
        load = sub.add_parser("load", help="load catalogue files (default: the bundled ones)")
        load.add_argument("files", nargs="*", metavar="FILE")

    def handle(self, *args, action, files, **options):
        if action == "check":
            failed = False
            for path in files:
                try:
                    parsed = load_catalogue(path)
                except CatalogueProblems as exc:
                    failed = True
                    for problem in exc.problems:
                        self.stderr.write(problem)
                else:
                    self.stdout.write(
                        f"{path}: ok: {parsed.version}, {len(parsed.sections)} sections, "
                        f"{len(parsed.questions)} questions"
                    )
            if failed:
                raise CommandError("catalogue check failed")
            return
        for path in files or bundled_files():
            try:
                catalogue, outcome = sync_catalogue(load_catalogue(path))
            except CatalogueProblems as exc:
                raise CommandError("\n".join(exc.problems)) from None
            except CatalogueInUse as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"{catalogue.version}: {outcome}")
