"""Load catalogue files into the database. A version that an assessment uses never changes."""

from __future__ import annotations

import datetime as dt
import re
from functools import cache
from pathlib import Path

from django.db import transaction

from mamori.catalogue.loader import ParsedCatalogue, load_catalogue
from mamori.catalogue.models import Catalogue, CatalogueInUse, Question, Section

DATA_DIR = Path(__file__).resolve().parent / "data"


def _natural(path: Path) -> list:
    # "ce-jp-2026" < "ce-jp-2026.1" < "ce-jp-2026.10": editions read in the order they came out.
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.stem)]


def bundled_files() -> list[Path]:
    """The catalogue files shipped with Mamori, oldest edition first by file name."""
    return sorted(DATA_DIR.glob("*.yaml"), key=_natural)


@cache
def parse_bundled() -> tuple[ParsedCatalogue, ...]:
    """Every bundled catalogue, parsed and ordered by ``valid_from`` (the newest last). Parsed
    once per process: the files ship with the package and do not change while it runs, and
    parsing one takes longer than storing it."""
    parsed = [load_catalogue(path) for path in bundled_files()]
    return tuple(sorted(parsed, key=lambda catalogue: (catalogue.valid_from, catalogue.version)))


@transaction.atomic
def sync_catalogue(parsed: ParsedCatalogue) -> tuple[Catalogue, str]:
    """Create or update one catalogue version; return it and 'created', 'updated' or 'unchanged'.

    Raises CatalogueInUse when the file differs from a version an assessment already pinned.
    """
    existing = Catalogue.objects.select_for_update().filter(version=parsed.version).first()
    if existing is not None and existing.digest == parsed.digest:
        return existing, "unchanged"
    if existing is not None and existing.in_use:
        raise CatalogueInUse(
            f"catalogue {parsed.version} is used by {existing.assessments.count()} assessment(s) "
            "and cannot change; publish the change as a new catalogue version"
        )
    fields = {
        "title_ja": parsed.title["ja"],
        "title_en": parsed.title["en"],
        "description_ja": parsed.description.get("ja", ""),
        "description_en": parsed.description.get("en", ""),
        "valid_from": parsed.valid_from,
        "settings": parsed.settings,
        "scope": parsed.scope,
        "digest": parsed.digest,
        "source_name": Path(parsed.source).name,
    }
    if existing is None:
        catalogue = Catalogue.objects.create(version=parsed.version, **fields)
        outcome = "created"
    else:
        catalogue = existing
        for name, value in fields.items():
            setattr(catalogue, name, value)
        catalogue.save()
        catalogue.questions.all().delete()
        catalogue.sections.all().delete()
        outcome = "updated"
    for parsed_section in parsed.sections:
        section = Section.objects.create(
            catalogue=catalogue,
            code=parsed_section.code,
            control=parsed_section.control,
            title_ja=parsed_section.title["ja"],
            title_en=parsed_section.title["en"],
            intro_ja=parsed_section.intro.get("ja", ""),
            intro_en=parsed_section.intro.get("en", ""),
            position=parsed_section.position,
        )
        Question.objects.bulk_create(
            Question(
                catalogue=catalogue,
                section=section,
                qid=question.qid,
                kind=question.kind,
                scoring=question.scoring,
                required=question.required,
                position=question.position,
                text_ja=question.text["ja"],
                text_en=question.text["en"],
                guidance_ja=question.guidance.get("ja", ""),
                guidance_en=question.guidance.get("en", ""),
                remediation_ja=question.remediation.get("ja", ""),
                remediation_en=question.remediation.get("en", ""),
                spec=question.spec,
            )
            for question in parsed_section.questions
        )
    return catalogue, outcome


def load_bundled() -> list[tuple[Catalogue, str]]:
    """Load every bundled version, oldest first. Loading never changes which version an existing
    assessment uses (each pins its own); new assessments get ``current_catalogue``."""
    return [sync_catalogue(parsed) for parsed in parse_bundled()]


def current_catalogue(today: dt.date | None = None) -> Catalogue | None:
    """The version in force today, for new assessments: the newest whose valid_from has arrived."""
    today = today or dt.date.today()
    return Catalogue.objects.filter(valid_from__lte=today).order_by("-valid_from", "-pk").first()
