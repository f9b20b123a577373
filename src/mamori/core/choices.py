"""Names defined in pure modules as plain ``{"ja": ..., "en": ...}`` texts, for models, forms
and pages: lazy, in the language active when they are shown, as ``gettext_lazy`` strings are.
"""

from __future__ import annotations

from django.utils import translation
from django.utils.functional import lazy

from mamori.core.controls import FIVE_CONTROLS, LABELS


def _in_active_language(texts: dict[str, str]) -> str:
    language = translation.get_language()
    # As gettext does: the original English while translation is deactivated (management
    # commands such as makemigrations run so, and the migrations' choices are in English),
    # Japanese for Japanese, English for any other language.
    if language is not None and language.startswith("ja"):
        return texts["ja"]
    return texts["en"]


in_active_language = lazy(_in_active_language, str)

# The five controls' names, as model choices and pages show them.
CONTROL_LABELS = {control: in_active_language(LABELS[control]) for control in FIVE_CONTROLS}
