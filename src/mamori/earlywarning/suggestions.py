"""A starting list for the registry from the organisation's latest assessment: the A2 section
(scope and asset inventory) has inventory tables whose cells name public address ranges,
domains and web applications (A2.8 in CE-JP 2026). Every text cell of those tables that parses
as a claim is offered, in canonical form; the user ticks what to register. A value that looks
like an address or a name but cannot be claimed (a private range, say) is listed with the
reason, so the user sees why it is not offered.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.db import transaction

from mamori.assessments.models import Answer, Assessment
from mamori.core.errors import MamoriError, NotAllowed
from mamori.earlywarning import registry
from mamori.earlywarning.models import Asset, AssetKind

INVENTORY_SECTION = "A2"
MAX_CELL_CHARS = 300
_ASN = re.compile(r"AS\s?\d{1,10}", re.IGNORECASE)
_NAME = re.compile(r"[^\s/@]+\.[^\s/@]+")


@dataclass(frozen=True)
class Suggestion:
    kind: str
    value: str  # canonical
    include_subdomains: bool
    written: str  # as the answer has it
    question: str  # the question it comes from, e.g. "A2.8"
    registered: bool  # already a live claim of the organisation

    @property
    def key(self) -> str:
        return f"{self.kind}|{self.value}|{int(self.include_subdomains)}"

    @property
    def label(self) -> str:
        return self.question

    @property
    def kind_label(self) -> str:
        return AssetKind(self.kind).label


@dataclass(frozen=True)
class Unusable:
    written: str
    question: str
    reason: str


@dataclass
class Suggestions:
    assessment: Assessment | None
    offered: list[Suggestion] = field(default_factory=list)
    unusable: list[Unusable] = field(default_factory=list)

    @property
    def new(self) -> list[Suggestion]:
        return [item for item in self.offered if not item.registered]

    def chosen(self, keys) -> list[Suggestion]:
        wanted = set(keys)
        return [item for item in self.new if item.key in wanted]


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def guess(text: str) -> tuple[str, str] | None:
    """The kind of claim a cell seems to name, with the text to parse; None for ordinary words."""
    text = text.strip()
    if not text or len(text) > MAX_CELL_CHARS:
        return None
    if "://" in text:
        try:
            host = urlsplit(text).hostname or ""
        except ValueError:
            return None
        if not host:
            return None
        return (AssetKind.IP, host) if _is_address(host) else (AssetKind.DOMAIN, host)
    if _ASN.fullmatch(text):
        return AssetKind.ASN, text.replace(" ", "")
    if "-" in text:
        first, _dash, last = (part.strip() for part in text.partition("-"))
        if _is_address(first) and _is_address(last):
            return AssetKind.RANGE, f"{first}-{last}"
    if "/" in text:
        address, _slash, length = text.partition("/")
        if _is_address(address.strip()) and length.strip().isdigit():
            return AssetKind.CIDR, text.replace(" ", "")
        return None
    if _is_address(text):
        return AssetKind.IP, text
    if _NAME.fullmatch(text) and not text.replace(".", "").isdigit():
        return AssetKind.DOMAIN, text
    return None


def _text_columns(answer: Answer) -> list[str]:
    return [
        column["id"]
        for column in answer.question.spec.get("columns", [])
        if column.get("kind") == "text"
    ]


def latest_assessment(organisation) -> Assessment | None:
    return (
        Assessment.objects.filter(organisation=organisation).order_by("-created_at", "-pk").first()
    )


def from_latest_assessment(organisation) -> Suggestions:
    assessment = latest_assessment(organisation)
    found = Suggestions(assessment)
    if assessment is None:
        return found
    registered = set(
        Asset.objects.filter(organisation=organisation, state__in=registry.LIVE_STATES).values_list(
            "kind", "value", "include_subdomains"
        )
    )
    answers = (
        Answer.objects.filter(
            assessment=assessment,
            question__section__code=INVENTORY_SECTION,
            question__kind="inventory",
        )
        .select_related("question")
        .order_by("question__position")
    )
    seen: set[tuple[str, str, bool]] = set()
    for answer in answers:
        columns = _text_columns(answer)
        rows = answer.value if isinstance(answer.value, list) else []
        for row in rows:
            if not isinstance(row, dict):
                continue
            for column in columns:
                cell = row.get(column)
                if not isinstance(cell, str):
                    continue
                guessed = guess(cell)
                if guessed is None:
                    continue
                try:
                    claim = registry.parse(*guessed)
                except MamoriError as refused:
                    found.unusable.append(
                        Unusable(cell.strip(), answer.question.qid, str(refused.message))
                    )
                    continue
                identity = (claim.kind, claim.value, claim.include_subdomains)
                if identity in seen:
                    continue
                seen.add(identity)
                found.offered.append(
                    Suggestion(
                        kind=claim.kind,
                        value=claim.value,
                        include_subdomains=claim.include_subdomains,
                        written=cell.strip(),
                        question=answer.question.qid,
                        registered=identity in registered
                        or (claim.kind, claim.value, not claim.include_subdomains) in registered,
                    )
                )
    return found


class _Refused(Exception):
    pass


def register_chosen(actor, access, organisation, chosen: list[Suggestion]):
    """Register every chosen value, or none: ``(assets, [])`` or ``([], errors)`` with one
    error per value that could not be registered."""
    errors: list[str] = []
    created = []
    try:
        with transaction.atomic():
            for item in chosen:
                try:
                    created.append(
                        registry.register(
                            actor,
                            access,
                            organisation,
                            kind=item.kind,
                            value=item.value,
                            include_subdomains=item.include_subdomains,
                            label=item.label,
                        )
                    )
                except NotAllowed:
                    raise
                except MamoriError as refused:
                    errors.append(f"{item.value}: {refused.message}")
            if errors:
                raise _Refused
    except _Refused:
        return [], errors
    return created, []
