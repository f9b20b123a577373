"""The five controls are defined once (``mamori.core.controls``); every place that names them
reads that definition, and pages and model choices show its names in the active language."""

from __future__ import annotations

from django.utils import translation

from mamori.catalogue import spec
from mamori.catalogue.models import CONTROL_CHOICES
from mamori.core.choices import CONTROL_LABELS
from mamori.core.controls import FIVE_CONTROLS, LABELS
from mamori.verification import rules
from mamori.verification.models import CONTROLS, Evaluation


def test_every_place_uses_the_one_definition_in_its_order():
    assert CONTROLS is FIVE_CONTROLS
    assert rules.CONTROLS[:5] == FIVE_CONTROLS
    assert tuple(area for area in spec.CONTROLS if area in FIVE_CONTROLS) == FIVE_CONTROLS
    assert [key for key, _label in CONTROL_CHOICES] == list(spec.CONTROLS)
    # One verdict column per control.
    columns = {field.name for field in Evaluation._meta.get_fields()}
    assert set(FIVE_CONTROLS) <= columns


def test_labels_follow_the_active_language():
    for control in FIVE_CONTROLS:
        with translation.override("ja"):
            assert str(CONTROL_LABELS[control]) == LABELS[control]["ja"]
            assert str(dict(CONTROL_CHOICES)[control]) == LABELS[control]["ja"]
        with translation.override("en"):
            assert str(CONTROL_LABELS[control]) == LABELS[control]["en"]


def test_with_translation_deactivated_labels_are_the_english_originals():
    """As gettext_lazy strings are: the model choices written into migrations stay English."""
    with translation.override(None):
        assert [str(CONTROL_LABELS[control]) for control in FIVE_CONTROLS] == [
            "Firewalls",
            "Secure configuration",
            "Security update management",
            "User access control",
            "Malware protection",
        ]
