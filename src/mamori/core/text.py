"""Checks on text that people type as a name: one line, nothing invisible.

A name is printed in page titles, e-mail subjects ("Supplier survey from <name>"), PDFs and CSV
cells. A line break in one makes an e-mail header impossible to build; a right-to-left override
or a zero-width space makes a name that looks like another's. So names refuse every control and
format character (Unicode categories Cc, Cf), surrogates (Cs) and the line and paragraph
separators (Zl, Zp). Ordinary spaces, including the ideographic space, are letters' neighbours
and stay allowed.
"""

from __future__ import annotations

import unicodedata

from django.core.exceptions import ValidationError
from django.core.validators import ProhibitNullCharactersValidator
from django.utils.deconstruct import deconstructible
from django.utils.translation import gettext_lazy as _

REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def first_control_character(value: str) -> str | None:
    """The first character a name may not contain, or ``None``."""
    for character in value:
        if unicodedata.category(character) in REFUSED_CATEGORIES:
            return character
    return None


@deconstructible
class SingleLineValidator:
    """Refuses line breaks, tabs and other control or invisible format characters."""

    message = _("Names cannot contain line breaks, tabs or other control characters.")
    code = "control_character"

    def __call__(self, value) -> None:
        # NUL is left to Django's own validator, which every form CharField runs with its own
        # message; model fields list it beside this one (``NAME_VALIDATORS``).
        if isinstance(value, str) and first_control_character(value.replace("\x00", "")):
            raise ValidationError(self.message, code=self.code)

    def __eq__(self, other) -> bool:
        return isinstance(other, SingleLineValidator)

    def __hash__(self) -> int:
        return hash(self.code)


validate_single_line = SingleLineValidator()
# For model fields, whose forms and ``full_clean`` do not refuse NUL by themselves.
NAME_VALIDATORS = [ProhibitNullCharactersValidator(), validate_single_line]


def validate_lines(value: str) -> None:
    """For a text area that holds one name per line: line breaks separate names, every other
    control character is refused."""
    for line in (value or "").splitlines():
        validate_single_line(line)


def spreadsheet_safe(value) -> str:
    """A CSV cell as text a spreadsheet will not run: programs take cells that start with
    = + - @ (or a tab or carriage return before one) as formulas, so those get a leading quote,
    which our own readers remove again."""
    if value is None:
        return ""
    text = str(value)
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text
