"""Severity of a matched advisory: CVSS base scores and distribution ratings. Pure logic, no Django
imports.

Order of preference, per affected package of an advisory:

1. CVSS vectors, parsed with the ``cvss`` library: the package's own (OSV
   ``affected[].severity``, Ubuntu's per-CVE ``cves_map``) when it has any, else the record's
   top-level ``severity[]``. The highest CVSS v3.x base score wins; v4.0 is used only when there
   is no v3.x vector, v2 only when there is neither. The rating is the one the CVSS version
   defines for that score (v2: low/medium/high; v3/v4: none/low/medium/high/critical, "none"
   reported as "negligible").
2. Otherwise the distribution's or database's rating word (Ubuntu's priority, GHSA's
   "MODERATE", ...), as the importer normalised it — except for Debian: what Debian records
   carry is the security tracker's *urgency* (how fast to upload a fix), not a severity, so it
   is never used as one.
3. Otherwise the advisory is unrated: ``rating`` and ``score`` are None.
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

from cvss import CVSS2, CVSS3, CVSS4
from cvss.exceptions import CVSSError

from mamori.advisories import records

RATINGS = ("negligible", "low", "medium", "high", "critical")
_RATING_WORDS = {
    "none": "negligible",
    "negligible": "negligible",
    "unimportant": "negligible",
    "low": "low",
    "medium": "medium",
    "moderate": "medium",
    "high": "high",
    "important": "high",
    "critical": "critical",
}
# Families whose records carry no severity of their own (Debian's "urgency" is not one).
FAMILIES_WITHOUT_RATING = frozenset({"Debian"})
# Preference order of CVSS versions: v3.x, then v4.0, then v2.
_V3, _V4, _V2 = 0, 1, 2


class Severity(NamedTuple):
    rating: str | None  # one of RATINGS, or None when unrated
    score: float | None  # the CVSS base score the rating comes from, when it comes from CVSS
    vector: str | None = None


UNRATED = Severity(None, None, None)


def normalise_rating(word: object) -> str | None:
    if not isinstance(word, str):
        return None
    return _RATING_WORDS.get(word.strip().lower())


@lru_cache(maxsize=1 << 16)
def parse_vector(vector: str) -> tuple[int, float, str] | None:
    """(preference, base score, rating) of one CVSS vector, or None when it is not one."""
    text = vector.strip()
    try:
        if text.startswith("CVSS:4."):
            parsed4 = CVSS4(text)
            return _V4, float(parsed4.base_score), _rating(parsed4.severity)
        if text.startswith("CVSS:3."):
            parsed3 = CVSS3(text)
            return _V3, float(parsed3.base_score), _rating(parsed3.severities()[0])
        parsed2 = CVSS2(text)
        return _V2, float(parsed2.base_score), _rating(parsed2.severities()[0])
    except (CVSSError, ValueError, KeyError, IndexError, TypeError, AttributeError):
        return None


def _rating(word: str) -> str:
    return _RATING_WORDS.get(word.strip().lower(), "negligible")


def from_vectors(vectors: tuple[str, ...]) -> Severity | None:
    """The preferred CVSS version's highest base score among ``vectors``, or None."""
    best: tuple[int, float, str, str] | None = None
    for vector in vectors:
        parsed = parse_vector(vector)
        if parsed is None:
            continue
        preference, score, rating = parsed
        # Lower preference number wins; within a version, the higher score.
        if best is None or (preference, -score) < (best[0], -best[1]):
            best = (preference, score, rating, vector)
    if best is None:
        return None
    return Severity(best[2], best[1], best[3])


def assess(advisory: records.Advisory, affected: records.AffectedPackage) -> Severity:
    """The severity of ``advisory`` for one of its affected packages (module docstring)."""
    found = from_vectors(affected.cvss_vectors) or from_vectors(advisory.cvss_vectors)
    if found is not None:
        return found
    if affected.family in FAMILIES_WITHOUT_RATING:
        return UNRATED
    ratings = [
        rating
        for rating in (normalise_rating(affected.severity), normalise_rating(advisory.severity))
        if rating is not None
    ]
    if not ratings:
        return UNRATED
    return Severity(max(ratings, key=RATINGS.index), None, None)


def worst(first: Severity, second: Severity) -> Severity:
    """The more severe of two assessments (for one advisory matched through several entries)."""

    def rank(item: Severity) -> tuple[int, float]:
        return (
            RATINGS.index(item.rating) if item.rating else -1,
            item.score if item.score is not None else -1.0,
        )

    return second if rank(second) > rank(first) else first
