"""When two organisation names are the same name, or close enough to be mistaken for each other.

Pure logic, no Django imports. A name is compared by its *key*: NFKC (full-width letters and
digits become ordinary ones, ㈱ becomes (株)), case folded, the legal form left out (株式会社,
(株), Co., Ltd., Inc. ...) and everything that is not a letter or a digit dropped (spaces of any
width, dots, hyphens, middle dots). "ＭＵＦＧ　銀行", "mufg銀行" and "株式会社MUFG銀行" have one key.

Two names are *the same* when their keys are equal, and *close* when one key contains the other
or they differ in little (a similarity ratio of at least ``CLOSE_RATIO``): a claimed organisation
with the same name as a registered one is refused, a close one is flagged for the person who
confirms it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from difflib import SequenceMatcher

CLOSE_RATIO = 0.85
# A key shorter than this is too common a word to call a longer name "close" for containing it.
MIN_CONTAINED = 4

# After NFKC and case folding. Longest forms first, so "co., ltd." is not left as "., ltd.".
LEGAL_FORMS = re.compile(
    r"株式会社|有限会社|合同会社|合資会社|合名会社|一般社団法人|一般財団法人|公益社団法人"
    r"|公益財団法人|\(株\)|\(有\)|\(同\)|\(社\)|\(財\)"
    r"|\bco\.?,?\s*ltd\b\.?|\bcompany\s+limited\b|\bcorporation\b|\bcorp\b\.?|\bincorporated\b"
    r"|\binc\b\.?|\blimited\b|\bltd\b\.?|\bk\.?\s?k\b\.?|\bplc\b|\bllc\b|\bgmbh\b|\bag\b"
    r"|\bpte\b\.?"
)


def name_key(name: str) -> str:
    text = unicodedata.normalize("NFKC", name or "").casefold()
    text = LEGAL_FORMS.sub(" ", text)
    return "".join(character for character in text if character.isalnum())


@dataclass(frozen=True)
class Resemblance:
    """An existing organisation (``ref``) whose name is the same as or close to a new name."""

    ref: object
    existing_name: str
    same: bool


def _close(a: str, b: str) -> bool:
    if not a or not b:
        return False
    shorter, longer = sorted((a, b), key=len)
    if len(shorter) >= MIN_CONTAINED and shorter in longer:
        return True
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    return matcher.real_quick_ratio() >= CLOSE_RATIO and matcher.ratio() >= CLOSE_RATIO


def resemblances(
    new_names: Iterable[str], existing: Iterable[tuple[object, Iterable[str]]]
) -> list[Resemblance]:
    """For each existing ``(ref, names)`` whose names resemble any of ``new_names``, one
    ``Resemblance`` (the same name wins over a close one), in the order given."""
    new_keys = {key for key in (name_key(name) for name in new_names) if key}
    found = []
    for ref, names in existing:
        best = None
        for name in names:
            key = name_key(name)
            if not key:
                continue
            if key in new_keys:
                best = Resemblance(ref, name, same=True)
                break
            if best is None and any(_close(key, new) for new in new_keys):
                best = Resemblance(ref, name, same=False)
        if best is not None:
            found.append(best)
    return found
