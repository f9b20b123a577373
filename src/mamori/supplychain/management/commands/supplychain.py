"""``mamori supplychain analyse|import|export``.

- ``analyse GRAPH.json --format json|text [--lang ja|en] [--indent]`` reads a
  ``mamori.supplygraph/1`` file and prints the structural-risk analysis
  (docs/supplychain-analysis.md); JSON is compact unless ``--indent`` is given. Pure: no
  database access, so it runs anywhere the package is installed.
- ``import ORGANISATION GRAPH.json`` adds the graph to an organisation's supply chain (all or
  nothing; existing ids are refused), ``export ORGANISATION [--output FILE]`` writes its graph.
  ORGANISATION is its id or corporate number.

Exit status: 0 on success; 2 for bad input (a missing or unreadable file, invalid JSON, a graph
that fails validation, a file over the size limit, an unknown organisation), reported as one
line on stderr naming the file and the first problem (with a count of the others).
"""

from __future__ import annotations

import gc
import io
import json

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from mamori.supplychain import analysis, graph


class Command(BaseCommand):
    help = "Analyse a supply-chain graph (mamori.supplygraph/1) for structural risks."
    requires_system_checks: list[str] = []  # pure: no database, no project checks needed

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        analyse = sub.add_parser(
            "analyse",
            help="single points of failure, sole sources, hidden convergence, single-country "
            "needs, opacity, uncertified providers, concentration and reach",
        )
        analyse.add_argument("path", metavar="GRAPH.json")
        analyse.add_argument("--format", choices=("json", "text"), default="text")
        analyse.add_argument(
            "--lang", choices=("ja", "en"), default="ja", help="language of the text report"
        )
        analyse.add_argument(
            "--indent",
            action="store_true",
            help="indent the JSON by two spaces, for reading (compact by default)",
        )
        analyse.add_argument(
            "--max-size",
            type=int,
            default=graph.DEFAULT_MAX_BYTES // (1024 * 1024),
            metavar="MiB",
            help="refuse files larger than this (default: %(default)s MiB)",
        )

        imported = sub.add_parser(
            "import", help="add a graph to an organisation's supply chain (all or nothing)"
        )
        imported.add_argument("organisation", metavar="ORGANISATION")
        imported.add_argument("path", metavar="GRAPH.json")
        exported = sub.add_parser("export", help="write an organisation's supply-chain graph")
        exported.add_argument("organisation", metavar="ORGANISATION")
        exported.add_argument("--output", metavar="FILE", help="write here instead of stdout")

    def handle(self, *args, action, **options):
        if action == "analyse":
            self.analyse(
                options["path"],
                output_format=options["format"],
                language=options["lang"],
                max_bytes=options["max_size"] * 1024 * 1024,
                indent=options["indent"],
            )
        elif action == "import":
            self.import_graph(options["organisation"], options["path"])
        elif action == "export":
            self.export_graph(options["organisation"], options["output"])

    def _organisation(self, reference: str):
        from mamori.organisations.reference import for_command

        return for_command(reference)

    def import_graph(self, reference: str, path: str) -> None:
        from mamori.supplychain import services

        organisation = self._organisation(reference)
        try:
            supply_graph = graph.load_path(path)
        except graph.GraphError as exc:
            raise CommandError(
                _("%(path)s: %(error)s") % {"path": path, "error": str(exc)}, returncode=2
            ) from None
        del supply_graph  # validated; the service reads the document itself
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
        try:
            counts = services.import_graph(organisation, document)
        except services.GraphImportError as exc:
            more = len(exc.errors) - 1
            suffix = (_(" (and %(count)d more)") % {"count": more}) if more > 0 else ""
            raise CommandError(
                _("%(path)s: %(error)s") % {"path": path, "error": str(exc)} + suffix,
                returncode=2,
            ) from None
        self.stdout.write(
            _("Imported into %(organisation)s: %(counts)s")
            % {
                "organisation": organisation,
                "counts": ", ".join(f"{key} {value}" for key, value in counts.items()),
            }
        )

    def export_graph(self, reference: str, output: str | None) -> None:
        from mamori.supplychain import services

        document = services.export_graph(self._organisation(reference))
        text = json.dumps(document, ensure_ascii=False, indent=2) + "\n"
        if output:
            try:
                with open(output, "w", encoding="utf-8") as handle:
                    handle.write(text)
            except OSError as exc:
                raise CommandError(
                    _("%(path)s: %(error)s") % {"path": output, "error": exc.strerror},
                    returncode=2,
                ) from None
        else:
            self.stdout.write(text, ending="")

    def analyse(
        self, path: str, *, output_format: str, language: str, max_bytes: int, indent: bool
    ) -> None:
        if max_bytes <= 0:
            raise CommandError(_("--max-size must be at least 1"), returncode=2)
        # A large graph and its result are millions of objects without reference cycles: the
        # cyclic collector would only walk them again and again (seconds on a dense graph).
        # Reference counting still frees everything.
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._analyse(path, output_format, language, max_bytes, indent)
        finally:
            if collecting:
                gc.enable()

    def _analyse(
        self, path: str, output_format: str, language: str, max_bytes: int, indent: bool
    ) -> None:
        try:
            supply_graph = graph.load_path(path, max_bytes=max_bytes)
        except graph.GraphError as exc:
            raise CommandError(
                _("%(path)s: %(error)s") % {"path": path, "error": str(exc)}, returncode=2
            ) from None
        result = analysis.analyse(supply_graph)
        del supply_graph  # its memory goes back before the output is written
        if output_format != "json":
            self.stdout.write(analysis.render_text(result, language), ending="")
            return
        binary = getattr(self.stdout, "buffer", None)  # OutputWrapper passes it through
        if binary is not None:
            # Straight to the byte stream: no 100 MB text through the text layer.
            self.stdout.flush()
            analysis.write_json(result, binary, indent=indent)
            binary.flush()
        else:  # a text stream given by the caller (call_command(stdout=StringIO()))
            buffer = io.BytesIO()
            analysis.write_json(result, buffer, indent=indent)
            self.stdout.write(buffer.getvalue().decode("utf-8"), ending="")
