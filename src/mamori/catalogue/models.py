from __future__ import annotations

from functools import cached_property

from django.db import models
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _

from mamori.catalogue import spec as catalogue_spec
from mamori.core.choices import CONTROL_LABELS

KIND_CHOICES = [
    ("yes_no", _("Yes / no")),
    ("choice", _("Choice")),
    ("multi_choice", _("Multiple choice")),
    ("number", _("Number")),
    ("text", _("Text")),
    ("inventory", _("Inventory table")),
]
SCORING_CHOICES = [("scored", _("Scored")), ("informational", _("Informational"))]
AREA_LABELS = {
    "organisation": _("Organisation"),
    "scope": _("Scope and asset inventory"),
    "insurance": _("Insurance"),
    **CONTROL_LABELS,
    "backups": _("Backups"),
    "governance": _("Board ownership"),
}
CONTROL_CHOICES = [(area, AREA_LABELS[area]) for area in catalogue_spec.CONTROLS]


class CatalogueInUse(Exception):
    """A catalogue version that an assessment has pinned cannot change."""


def localised(obj, field: str) -> str:
    """``obj.<field>_en`` for English, ``obj.<field>_ja`` otherwise (Japanese is the default)."""
    language = (get_language() or "ja")[:2]
    value = getattr(obj, f"{field}_{'en' if language == 'en' else 'ja'}")
    return value or getattr(obj, f"{field}_ja")


def pick(texts: dict | None) -> str:
    """The current language's entry of a ``{"ja": ..., "en": ...}`` mapping."""
    if not texts:
        return ""
    language = "en" if (get_language() or "ja").startswith("en") else "ja"
    return texts.get(language) or texts.get("ja", "")


class Catalogue(models.Model):
    version = models.CharField(_("version"), max_length=40, unique=True)
    title_ja = models.CharField(_("title (Japanese)"), max_length=200)
    title_en = models.CharField(_("title (English)"), max_length=200)
    description_ja = models.TextField(_("description (Japanese)"), blank=True)
    description_en = models.TextField(_("description (English)"), blank=True)
    valid_from = models.DateField(_("valid from"))
    settings = models.JSONField(_("thresholds and timers"), default=dict)
    scope = models.JSONField(_("scope questions"), default=dict)
    digest = models.CharField(_("source digest"), max_length=64)
    source_name = models.CharField(_("source file"), max_length=200)
    loaded_at = models.DateTimeField(_("loaded"), auto_now=True)

    class Meta:
        verbose_name = _("requirement catalogue")
        verbose_name_plural = _("requirement catalogues")
        ordering = ["-valid_from"]

    def __str__(self) -> str:
        return self.version

    def save(self, *args, **kwargs):
        if self.pk is not None and self.in_use:
            stored = Catalogue.objects.filter(pk=self.pk).values_list("digest", flat=True).first()
            if stored != self.digest:
                raise CatalogueInUse(f"catalogue {self.version} is in use and cannot change")
        super().save(*args, **kwargs)

    @property
    def title(self) -> str:
        return localised(self, "title")

    @property
    def in_use(self) -> bool:
        return self.pk is not None and self.assessments.exists()

    def setting(self, name: str):
        return self.settings[name]


class CatalogueContent(models.Model):
    """Sections and questions of a catalogue version that an assessment pinned never change."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        self._refuse_if_in_use()
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        self._refuse_if_in_use()
        return super().delete(*args, **kwargs)

    def _refuse_if_in_use(self) -> None:
        if self.catalogue_id and Catalogue(pk=self.catalogue_id).in_use:
            raise CatalogueInUse("this catalogue version is in use and cannot change")


class Section(CatalogueContent):
    catalogue = models.ForeignKey(Catalogue, on_delete=models.CASCADE, related_name="sections")
    code = models.CharField(_("section"), max_length=8)
    control = models.CharField(_("control"), max_length=32, choices=CONTROL_CHOICES)
    title_ja = models.CharField(max_length=200)
    title_en = models.CharField(max_length=200)
    intro_ja = models.TextField(blank=True)
    intro_en = models.TextField(blank=True)
    position = models.PositiveIntegerField()

    class Meta:
        verbose_name = _("section")
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["catalogue", "code"], name="section_unique")]

    def __str__(self) -> str:
        return f"{self.code} {self.title}"

    @property
    def title(self) -> str:
        return localised(self, "title")

    @property
    def intro(self) -> str:
        return localised(self, "intro")


class Question(CatalogueContent):
    catalogue = models.ForeignKey(Catalogue, on_delete=models.CASCADE, related_name="questions")
    section = models.ForeignKey(Section, on_delete=models.CASCADE, related_name="questions")
    qid = models.CharField(_("question"), max_length=16)
    kind = models.CharField(_("kind"), max_length=16, choices=KIND_CHOICES)
    scoring = models.CharField(_("scoring"), max_length=16, choices=SCORING_CHOICES)
    required = models.BooleanField(_("required"), default=True)
    position = models.PositiveIntegerField()
    text_ja = models.TextField()
    text_en = models.TextField()
    guidance_ja = models.TextField(blank=True)
    guidance_en = models.TextField(blank=True)
    remediation_ja = models.TextField(blank=True)
    remediation_en = models.TextField(blank=True)
    spec = models.JSONField(default=dict)

    class Meta:
        verbose_name = _("question")
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["catalogue", "qid"], name="question_unique")]

    def __str__(self) -> str:
        return self.qid

    def _format(self, text: str) -> str:
        try:
            return text.format(**self.catalogue.settings)
        except (KeyError, IndexError, ValueError):
            return text

    @property
    def text(self) -> str:
        return self._format(localised(self, "text"))

    @property
    def guidance(self) -> str:
        return self._format(localised(self, "guidance"))

    @property
    def remediation(self) -> str:
        return self._format(localised(self, "remediation"))

    @property
    def is_scored(self) -> bool:
        return self.scoring == "scored"

    @cached_property
    def rules(self) -> catalogue_spec.QuestionSpec:
        return catalogue_spec.QuestionSpec.from_spec(
            self.qid, self.kind, self.scoring, self.required, self.spec, self.catalogue.settings
        )

    @property
    def options(self) -> list[dict]:
        return [
            {"value": option["value"], "label": pick(option["label"])}
            for option in self.spec.get("options", [])
        ]

    @property
    def columns(self) -> list[dict]:
        return [
            {
                **column,
                "label": pick(column["label"]),
                "options": [
                    {"value": o["value"], "label": pick(o["label"])}
                    for o in column.get("options", [])
                ],
            }
            for column in self.spec.get("columns", [])
        ]

    @property
    def unit(self) -> str:
        return pick(self.spec.get("unit"))

    @property
    def auto_fail_reason(self) -> str:
        return self._format(pick((self.spec.get("auto_fail") or {}).get("reason")))

    @property
    def has_auto_fail(self) -> bool:
        return bool(self.spec.get("auto_fail"))
