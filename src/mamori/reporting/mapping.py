"""The governance mapping as data: which of Mamori's evidence informs each principle of the UK Cyber
Governance Code of Practice and each item of the FSA's cyber security guidelines.

The board pack reads the mapping to print a coverage table (what Mamori does and does not evidence)
and to colour each principle from the status of its sources. The mapping lives in YAML
(``data/governance-mapping.yaml``) so the wording and the links can be revised without code
changes; this module loads it and reports every problem at once as ``file:line: problem`` so an
author can fix a file in one pass. Pure logic, no Django imports: the pack, the CLI and the tests
call it alike.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

# The catalogue loader's composed-node line tracking is plain PyYAML with no Django behind it;
# reusing it keeps one definition of "the line of a key" across Mamori's YAML files.
from mamori.catalogue.loader import ShapeChecker, _LineLoader, _Mapping, _Sequence
from mamori.core.controls import FIVE_CONTROLS
from mamori.reporting import metrics

BUNDLED_PATH = Path(__file__).resolve().parent / "data" / "governance-mapping.yaml"
MAX_FILE_BYTES = 1024 * 1024

LANGUAGES = ("ja", "en")
# The Code's five principles and the guideline's six domains are fixed by the documents: a file
# may word them, but not add, drop or rename them.
PRINCIPLE_KEYS = ("A", "B", "C", "D", "E")
DOMAIN_KEYS = (
    "governance",
    "identification",
    "protection",
    "detection",
    "response_recovery",
    "third_party",
)
LEVELS = ("basic", "desirable")
SOURCE_KINDS = ("control", "metric", "question")
# The keys of the daily metric samples a source may cite (callers with another set pass it).
METRIC_KEYS = metrics.METRIC_KEYS

TOP_KEYS = {"version", "source", "principles", "domains", "items"}
SOURCE_NOTE_KEYS = {"documents", "note"}
DOCUMENT_KEYS = {"title", "publisher", "published"}
PRINCIPLE_KEYS_ALLOWED = {"key", "label", "rationale", "sources"}
DOMAIN_KEYS_ALLOWED = {"key", "label"}
ITEM_KEYS_ALLOWED = {"id", "domain", "level", "label", "note", "sources"}

ITEM_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
SOURCE_FORM = re.compile(r"^(?P<kind>[a-z_]+):(?P<key>\S+)$")
PUBLISHED = re.compile(r"^[0-9]{4}-[0-9]{2}(-[0-9]{2})?$")


class MappingError(Exception):
    """Raised with every ``file:line: problem`` found in a governance mapping file."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def _check_language(language: str) -> str:
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, not {language!r}")
    return language


@dataclass(frozen=True)
class Text:
    """One text in both of Mamori's languages."""

    ja: str
    en: str

    def get(self, language: str = "ja") -> str:
        return getattr(self, _check_language(language))


@dataclass(frozen=True)
class Document:
    """One of the documents the mapping paraphrases; ``published`` is YYYY-MM or YYYY-MM-DD."""

    title: Text
    publisher: Text
    published: str


@dataclass(frozen=True)
class Principle:
    """A Governance Code principle and the sources that colour it red, amber or green."""

    key: str
    labels: Text
    rationale: Text | None
    sources: tuple[str, ...]

    def label(self, language: str = "ja") -> str:
        return self.labels.get(language)


@dataclass(frozen=True)
class Domain:
    """One of the FSA guideline's six domains."""

    key: str
    labels: Text

    def label(self, language: str = "ja") -> str:
        return self.labels.get(language)


@dataclass(frozen=True)
class Item:
    """A paraphrased guideline topic, its level and the Mamori sources that evidence it (none:
    a gap the coverage table shows)."""

    id: str
    domain: str
    level: str
    labels: Text
    note: Text | None
    sources: tuple[str, ...]

    def label(self, language: str = "ja") -> str:
        return self.labels.get(language)


@dataclass(frozen=True)
class GovernanceMapping:
    version: str
    documents: tuple[Document, ...]
    note: Text
    principles: tuple[Principle, ...]
    domains: tuple[Domain, ...]
    items: tuple[Item, ...]
    path: str

    def principle(self, key: str) -> Principle:
        for principle in self.principles:
            if principle.key == key:
                return principle
        raise KeyError(f"unknown principle {key!r} (one of: {', '.join(PRINCIPLE_KEYS)})")

    def domain(self, key: str) -> Domain:
        for domain in self.domains:
            if domain.key == key:
                return domain
        raise KeyError(f"unknown domain {key!r} (one of: {', '.join(DOMAIN_KEYS)})")

    def items_in(self, domain_key: str) -> tuple[Item, ...]:
        return tuple(item for item in self.items if item.domain == domain_key)

    def sources(self) -> frozenset[str]:
        """Every source cited anywhere, for a caller that gathers their statuses in one pass."""
        by_principles = (source for principle in self.principles for source in principle.sources)
        by_items = (source for item in self.items for source in item.sources)
        return frozenset((*by_principles, *by_items))


# --- Loading ----------------------------------------------------------------------------------


def load(
    path: str | Path | None = None,
    *,
    metrics: Collection[str] = METRIC_KEYS,
    questions: Collection[str] | None = None,
) -> GovernanceMapping:
    """Load and validate a mapping file (by default the bundled one).

    ``metrics`` are the metric keys a ``metric:`` source may name; ``questions`` the catalogue
    question ids a ``question:`` source may name, or None to leave them unchecked (a caller
    without a catalogue at hand). Raises MappingError listing every problem.
    """
    path = Path(path) if path is not None else BUNDLED_PATH
    source = str(path)
    try:
        raw_bytes = path.read_bytes()
    except OSError as exc:
        raise MappingError([f"{source}:0: cannot read file: {exc.strerror}"]) from None
    if len(raw_bytes) > MAX_FILE_BYTES:
        raise MappingError([f"{source}:0: file is larger than {MAX_FILE_BYTES} bytes"])
    try:
        text = raw_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MappingError([f"{source}:0: not UTF-8 text ({exc.reason})"]) from None
    return parse(text, source, metrics=metrics, questions=questions)


def parse(
    text: str,
    source: str,
    *,
    metrics: Collection[str] = METRIC_KEYS,
    questions: Collection[str] | None = None,
) -> GovernanceMapping:
    """Validate mapping YAML given as text; ``source`` names it in the problems."""
    # A bare string would pass as a collection of its characters and reject every metric.
    if isinstance(metrics, str) or isinstance(questions, str):
        raise TypeError("metrics and questions must be collections of keys, not one string")
    try:
        document = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        raise MappingError([f"{source}:{line}: invalid YAML: {exc.problem}"]) from None
    except yaml.YAMLError as exc:
        raise MappingError([f"{source}:0: invalid YAML: {exc}"]) from None
    checker = _Checker(
        source, frozenset(metrics), None if questions is None else frozenset(questions)
    )
    mapping = checker.document(document)
    if checker.problems or mapping is None:
        raise MappingError(checker.report())
    return mapping


_EMPTY = Text("", "")


class _Checker(ShapeChecker):
    """Walks the composed document, collecting problems; builds the result only from values that
    passed, so nothing it returns is used when a problem was found."""

    def __init__(self, source: str, metrics: frozenset[str], questions: frozenset[str] | None):
        super().__init__(source)
        self.metrics = metrics
        self.questions = questions
        # (line, message): reported in file order, not check order (``report``).
        self.problems: list[tuple[int, str]] = []  # type: ignore[assignment]

    def problem(self, line: int, message: str) -> None:
        self.problems.append((line, message))

    def report(self) -> list[str]:
        """The problems in file order (a stable sort keeps those on one line in check order), so
        an author can work down the file."""
        ordered = sorted(self.problems, key=lambda problem: problem[0])
        return [f"{self.source}:{line}: {message}" for line, message in ordered]

    # Shapes ------------------------------------------------------------------------------------

    def sequence(self, value: Any, line: int, what: str) -> _Sequence | None:
        if not isinstance(value, _Sequence):
            self.problem(line, f"{what} must be a list")
            return None
        return value

    def text(self, mapping: _Mapping, key: str, what: str) -> Text | None:
        """A ja/en text under ``key``; None (reported) when absent or incomplete."""
        if key not in mapping:
            return None  # a missing required key is reported by keys()
        value = self.mapping(mapping[key], mapping.line_of(key), f"{what} {key!r}")
        if value is None:
            return None
        texts = {}
        for language in LANGUAGES:
            text = value.get(language)
            if not isinstance(text, str) or not text.strip():
                self.problem(
                    value.line_of(language) if language in value else value.line,
                    f"{what} {key!r} needs a non-empty {language!r} text",
                )
            else:
                texts[language] = text.strip()
        for extra in value:
            if extra not in LANGUAGES:
                self.problem(value.line_of(extra), f"unknown language {extra!r} in {what} {key!r}")
        if len(texts) != len(LANGUAGES):
            return None
        return Text(**texts)

    def sources(self, mapping: _Mapping, what: str) -> tuple[str, ...]:
        if "sources" not in mapping:
            return ()
        value = self.sequence(mapping["sources"], mapping.line_of("sources"), f"{what} 'sources'")
        if value is None:
            return ()
        seen: set[str] = set()
        for entry, line in zip(value, value.item_lines, strict=True):
            if not isinstance(entry, str):
                self.problem(line, f"{what}: source {entry!r} must be text of the form kind:key")
                continue
            if entry in seen:
                self.problem(line, f"{what}: duplicate source {entry!r}")
            seen.add(entry)
            self.source_reference(entry, line, what)
        return tuple(value)

    def source_reference(self, entry: str, line: int, what: str) -> None:
        form = SOURCE_FORM.match(entry)
        if form is None:
            self.problem(line, f"{what}: source {entry!r} is not of the form kind:key")
            return
        kind, key = form["kind"], form["key"]
        if kind == "control":
            if key not in FIVE_CONTROLS:
                self.problem(
                    line, f"{what}: unknown control {key!r} (one of: {', '.join(FIVE_CONTROLS)})"
                )
        elif kind == "metric":
            if key not in self.metrics:
                self.problem(line, f"{what}: unknown metric {key!r}")
        elif kind == "question":
            if self.questions is not None and key not in self.questions:
                self.problem(line, f"{what}: unknown question {key!r} (not in the catalogue)")
        else:
            self.problem(
                line,
                f"{what}: unknown source kind {kind!r} in {entry!r} "
                f"(one of: {', '.join(SOURCE_KINDS)})",
            )

    def choice(self, mapping: _Mapping, key: str, allowed: tuple[str, ...], message: str) -> str:
        """The value under ``key`` if it is one of ``allowed``; otherwise reports ``message``
        (formatted with the value) and returns ""."""
        if key not in mapping:
            return ""
        value = mapping[key]
        if isinstance(value, str) and value in allowed:
            return value
        self.problem(mapping.line_of(key), message.format(value=value, allowed=", ".join(allowed)))
        return ""

    # Sections ----------------------------------------------------------------------------------

    def document(self, document: Any) -> GovernanceMapping | None:
        top = self.mapping(document, 1, "the mapping file")
        if top is None:
            return None
        self.keys(top, TOP_KEYS, TOP_KEYS, "the mapping file")
        version = top.get("version")
        if "version" in top and (not isinstance(version, str) or not version.strip()):
            # An unquoted 2026.1 is a float in YAML; a version is a name, not a number.
            self.problem(top.line_of("version"), "'version' must be text, e.g. \"2026.1\"")
        documents, note = self.source_note(top)
        principles = self.principles(top)
        domains = self.domains(top)
        items = self.items(top)
        if self.problems:
            return None
        return GovernanceMapping(
            version=str(version).strip(),
            documents=documents,
            note=note or _EMPTY,
            principles=principles,
            domains=domains,
            items=items,
            path=self.source,
        )

    def source_note(self, top: _Mapping) -> tuple[tuple[Document, ...], Text | None]:
        if "source" not in top:
            return (), None
        note = self.mapping(top["source"], top.line_of("source"), "'source'")
        if note is None:
            return (), None
        self.keys(note, SOURCE_NOTE_KEYS, SOURCE_NOTE_KEYS, "'source'")
        documents: list[Document] = []
        listed = None
        if "documents" in note:
            listed = self.sequence(
                note["documents"], note.line_of("documents"), "'source' 'documents'"
            )
        if listed is not None and not listed:
            self.problem(note.line_of("documents"), "'source' 'documents' must name the documents")
        entries = zip(listed, listed.item_lines, strict=True) if listed is not None else ()
        for number, (entry, line) in enumerate(entries, start=1):
            what = f"document {number} in 'source'"
            document = self.mapping(entry, line, what)
            if document is None:
                continue
            self.keys(document, DOCUMENT_KEYS, DOCUMENT_KEYS, what)
            title = self.text(document, "title", what)
            publisher = self.text(document, "publisher", what)
            published = document.get("published")
            if "published" in document and (
                not isinstance(published, str) or not PUBLISHED.match(published)
            ):
                self.problem(
                    document.line_of("published"),
                    f'{what}: \'published\' must be text "YYYY-MM" or "YYYY-MM-DD"',
                )
            elif title and publisher and isinstance(published, str):
                documents.append(Document(title, publisher, published))
        return tuple(documents), self.text(note, "note", "'source'")

    def principles(self, top: _Mapping) -> tuple[Principle, ...]:
        if "principles" not in top:
            return ()
        listed = self.sequence(top["principles"], top.line_of("principles"), "'principles'")
        if listed is None:
            return ()
        principles: list[Principle] = []
        seen: dict[str, int] = {}
        for entry, line in zip(listed, listed.item_lines, strict=True):
            mapping = self.mapping(entry, line, "a principle")
            if mapping is None:
                continue
            key = mapping.get("key")
            what = f"principle {key!r}" if isinstance(key, str) else "a principle"
            self.keys(mapping, PRINCIPLE_KEYS_ALLOWED, PRINCIPLE_KEYS_ALLOWED - {"rationale"}, what)
            key = self.choice(
                mapping,
                "key",
                PRINCIPLE_KEYS,
                "unknown principle {value!r} (the Governance Code's are {allowed})",
            )
            if key and key in seen:
                self.problem(
                    mapping.line_of("key"),
                    f"duplicate principle {key!r} (first on line {seen[key]})",
                )
            elif key:
                seen[key] = mapping.line_of("key")
            labels = self.text(mapping, "label", what)
            rationale = self.text(mapping, "rationale", what)
            sources = self.sources(mapping, what)
            if key and labels:
                principles.append(Principle(key, labels, rationale, sources))
        for key in PRINCIPLE_KEYS:
            if key not in seen:
                self.problem(listed.line, f"'principles' lacks principle {key!r}")
        return tuple(principles)

    def domains(self, top: _Mapping) -> tuple[Domain, ...]:
        if "domains" not in top:
            return ()
        listed = self.sequence(top["domains"], top.line_of("domains"), "'domains'")
        if listed is None:
            return ()
        domains: list[Domain] = []
        seen: dict[str, int] = {}
        for entry, line in zip(listed, listed.item_lines, strict=True):
            mapping = self.mapping(entry, line, "a domain")
            if mapping is None:
                continue
            key = mapping.get("key")
            what = f"domain {key!r}" if isinstance(key, str) else "a domain"
            self.keys(mapping, DOMAIN_KEYS_ALLOWED, DOMAIN_KEYS_ALLOWED, what)
            key = self.choice(
                mapping,
                "key",
                DOMAIN_KEYS,
                "unknown domain {value!r} (the FSA guideline's are {allowed})",
            )
            if key and key in seen:
                self.problem(
                    mapping.line_of("key"), f"duplicate domain {key!r} (first on line {seen[key]})"
                )
            elif key:
                seen[key] = mapping.line_of("key")
            labels = self.text(mapping, "label", what)
            if key and labels:
                domains.append(Domain(key, labels))
        for key in DOMAIN_KEYS:
            if key not in seen:
                self.problem(listed.line, f"'domains' lacks domain {key!r}")
        return tuple(domains)

    def items(self, top: _Mapping) -> tuple[Item, ...]:
        if "items" not in top:
            return ()
        listed = self.sequence(top["items"], top.line_of("items"), "'items'")
        if listed is None:
            return ()
        items: list[Item] = []
        seen: dict[str, int] = {}
        for number, (entry, line) in enumerate(zip(listed, listed.item_lines, strict=True), 1):
            mapping = self.mapping(entry, line, f"item {number}")
            if mapping is None:
                continue
            item_id = mapping.get("id")
            if isinstance(item_id, str) and ITEM_ID.match(item_id):
                what = f"item {item_id}"
                if item_id in seen:
                    self.problem(
                        mapping.line_of("id"),
                        f"duplicate item id {item_id!r} (first on line {seen[item_id]})",
                    )
                else:
                    seen[item_id] = mapping.line_of("id")
            else:
                what = f"item {number}"
                if "id" in mapping:
                    self.problem(
                        mapping.line_of("id"),
                        f"{what}: id {item_id!r} must be 1-32 letters, digits, '.', '_' or '-'",
                    )
            self.keys(mapping, ITEM_KEYS_ALLOWED, ITEM_KEYS_ALLOWED - {"note"}, what)
            domain = self.choice(
                mapping,
                "domain",
                DOMAIN_KEYS,
                what + ": unknown domain {value!r} (one of: {allowed})",
            )
            level = self.choice(
                mapping, "level", LEVELS, what + ": level {value!r} must be basic or desirable"
            )
            labels = self.text(mapping, "label", what)
            note = self.text(mapping, "note", what)
            sources = self.sources(mapping, what)
            if isinstance(item_id, str) and domain and level and labels:
                items.append(Item(item_id, domain, level, labels, note, sources))
        return tuple(items)


# --- Coverage ---------------------------------------------------------------------------------


def _count(flags: Iterable[bool]) -> dict[str, int]:
    flags = list(flags)
    return {"evidenced": sum(flags), "total": len(flags)}


def _source_rows(sources: Iterable[str], evidenced: Collection[str]) -> list[dict[str, Any]]:
    return [{"source": source, "evidenced": source in evidenced} for source in sources]


def coverage(
    mapping: GovernanceMapping, evidenced: Collection[str], language: str = "ja"
) -> dict[str, Any]:
    """The pack's coverage table: per principle its sources and per domain its items, each flagged
    evidenced or not, with counts.

    ``evidenced`` holds the sources for which the organisation has evidence (e.g.
    ``{"metric:kev_open", "control:firewalls", "question:A6.9"}``); what counts as evidence (a
    sample on the day, an answer in the current assessment) is the caller's decision. An item is
    evidenced when at least one of its sources is, so an item without sources never is: the table
    shows what Mamori cannot show as plainly as what it can.
    """
    _check_language(language)
    evidenced = frozenset(evidenced)
    principles = []
    for principle in mapping.principles:
        rows = _source_rows(principle.sources, evidenced)
        principles.append(
            {
                "key": principle.key,
                "label": principle.label(language),
                "rationale": principle.rationale.get(language) if principle.rationale else "",
                "evidenced": any(row["evidenced"] for row in rows),
                "sources": rows,
                "counts": {"sources": _count(row["evidenced"] for row in rows)},
            }
        )
    all_items: list[dict[str, Any]] = []
    domains = []
    for domain in mapping.domains:
        items = []
        for item in mapping.items_in(domain.key):
            rows = _source_rows(item.sources, evidenced)
            items.append(
                {
                    "id": item.id,
                    "level": item.level,
                    "label": item.label(language),
                    "note": item.note.get(language) if item.note else "",
                    "evidenced": any(row["evidenced"] for row in rows),
                    "sources": rows,
                }
            )
        all_items += items
        domains.append(
            {
                "key": domain.key,
                "label": domain.label(language),
                "items": items,
                "counts": _level_counts(items),
            }
        )
    return {
        "version": mapping.version,
        "language": language,
        "principles": principles,
        "domains": domains,
        "counts": _level_counts(all_items),
    }


def _level_counts(items: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    return {
        level: _count(item["evidenced"] for item in items if item["level"] == level)
        for level in LEVELS
    }


def rag_sources(mapping: GovernanceMapping, principle_key: str) -> list[str]:
    """The sources that inform a principle, in the file's order, for the pack to colour the
    principle red/amber/green from their statuses. KeyError for an unknown principle."""
    return list(mapping.principle(principle_key).sources)
