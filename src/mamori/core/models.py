from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class TimeStampedModel(models.Model):
    """Created/updated stamps shared by every domain model."""

    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        abstract = True


class Heartbeat(models.Model):
    """When a background component last showed it was alive, one row per component.

    The beat sends the ``heartbeat`` task every ``MAMORI_HEARTBEAT_SECONDS`` and notes when it
    did (``beat``); the worker that runs it notes when (``worker``). Both are read from the
    database by the readiness check, so a web process sees a stopped beat or worker without
    asking the broker."""

    BEAT = "beat"
    WORKER = "worker"

    component = models.CharField(_("component"), max_length=16, primary_key=True)
    at = models.DateTimeField(_("last seen"))

    class Meta:
        verbose_name = _("heartbeat")
        verbose_name_plural = _("heartbeats")

    def __str__(self) -> str:
        return f"{self.component} {self.at.isoformat()}"

    @classmethod
    def record(cls, component: str) -> None:
        cls.objects.update_or_create(component=component, defaults={"at": timezone.now()})
