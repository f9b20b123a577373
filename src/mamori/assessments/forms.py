from __future__ import annotations

import re
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from mamori.assessments.models import AppealOutcome, Level, Outcome, Verdict
from mamori.catalogue.models import Question
from mamori.core.text import validate_single_line
from mamori.organisations.models import Category, Organisation

ROW_FIELD = re.compile(r"^row-(\d{1,3})-([a-z][a-z0-9_]*)$")


def answer_from_post(question: Question, data) -> Any:
    """The raw answer a question's form posted, in the shape the catalogue validates."""
    if question.kind == "multi_choice":
        return data.getlist("value")
    if question.kind == "inventory":
        rows: dict[int, dict[str, str]] = {}
        for key in data:
            match = ROW_FIELD.match(key)
            if match:
                rows.setdefault(int(match.group(1)), {})[match.group(2)] = data.get(key)
        return [rows[index] for index in sorted(rows)]
    return data.get("value")


def parse_version(data) -> int | None:
    raw = data.get("version")
    if raw is None or raw == "":
        return None
    try:
        version = int(raw)
    except (TypeError, ValueError):
        return -1  # never matches: reported as a conflict, not a crash
    return version if version >= 0 else -1


class StartAssessmentForm(forms.Form):
    organisation = forms.ModelChoiceField(
        label=_("Organisation"), queryset=Organisation.objects.none()
    )
    certification_body = forms.ModelChoiceField(
        label=_("Certification body"),
        queryset=Organisation.objects.filter(category=Category.CERTIFICATION_BODY),
    )
    # Plus is started from a Cyber Essentials certificate (mamori.plus), never from here.
    level = forms.ChoiceField(
        label=_("Level"), choices=[(Level.CE, Level.CE.label)], initial=Level.CE
    )

    def __init__(self, *args, organisations, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["organisation"].queryset = organisations
        if organisations.count() == 1:
            self.fields["organisation"].initial = organisations.first()


class DeclarationForm(forms.Form):
    name = forms.CharField(
        label=_("Your full name"), max_length=150, validators=[validate_single_line]
    )
    title = forms.CharField(
        label=_("Your position (e.g. Director, CISO)"),
        max_length=150,
        validators=[validate_single_line],
    )
    confirm = forms.BooleanField(
        label=_("I confirm, on behalf of the board, that the answers are true and complete."),
    )


class ClarificationReplyForm(forms.Form):
    message = forms.CharField(
        label=_("Message to the assessor (optional)"),
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Say what you changed or add what the assessor asked for."),
    )


class MarkForm(forms.Form):
    verdict = forms.ChoiceField(
        label=_("Verdict"), choices=Verdict.choices, widget=forms.RadioSelect
    )
    comment = forms.CharField(
        label=_("Comment"),
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class DecisionForm(forms.Form):
    outcome = forms.ChoiceField(
        label=_("Decision"), choices=Outcome.choices, widget=forms.RadioSelect
    )
    summary = forms.CharField(
        label=_("Summary for the applicant"),
        required=False,
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class AttachmentForm(forms.Form):
    file = forms.FileField(label=_("Evidence file"))
    question = forms.CharField(
        label=_("Question (optional, e.g. A4.1)"), required=False, max_length=16
    )


class RevokeForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason"), max_length=2000, widget=forms.Textarea(attrs={"rows": 3})
    )


class AppealForm(forms.Form):
    grounds = forms.CharField(
        label=_("Grounds for the appeal"),
        help_text=_(
            "Say which marks or which part of the decision you think are wrong, and why. Refer "
            "to the question numbers and to evidence the assessor already has."
        ),
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 6}),
    )


class AppealDecisionForm(forms.Form):
    outcome = forms.ChoiceField(
        label=_("Decision on the appeal"), choices=AppealOutcome.choices, widget=forms.RadioSelect
    )
    reason = forms.CharField(
        label=_("Reason for the applicant"),
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
