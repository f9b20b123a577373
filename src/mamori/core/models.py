from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class TimeStampedModel(models.Model):
    """Created/updated stamps shared by every domain model."""

    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        abstract = True


class OutboxState(models.TextChoices):
    PENDING = "pending", _("pending")
    DONE = "done", _("done")
    FAILED = "failed", _("given up")


class OutboxMessage(models.Model):
    """A piece of background work recorded in the transaction that made it necessary
    (``mamori.core.outbox``): it survives a broker or worker that is away, and is marked done
    only once the task has run to the end. ``due_at`` is when it is (next) handed to the
    broker: after a failed attempt, with backoff; after a publish, a deadline by which the task
    must have reported back, or it is published again."""

    task = models.CharField(_("task"), max_length=200)
    args = models.JSONField(_("arguments"), default=list)
    kwargs = models.JSONField(_("keyword arguments"), default=dict)
    state = models.CharField(
        _("state"), max_length=8, choices=OutboxState.choices, default=OutboxState.PENDING
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    due_at = models.DateTimeField(_("due"), default=timezone.now)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    published_at = models.DateTimeField(_("last handed to the broker"), null=True, blank=True)
    last_error = models.TextField(_("last error"), blank=True)
    done_at = models.DateTimeField(_("done"), null=True, blank=True)

    class Meta:
        verbose_name = _("outbox message")
        verbose_name_plural = _("outbox messages")
        indexes = [
            models.Index(fields=["state", "due_at"], name="outbox_state_due"),
            models.Index(fields=["state", "done_at"], name="outbox_state_done"),
        ]

    def __str__(self) -> str:
        return f"{self.task} #{self.pk} ({self.state})"


class MailReceipt(models.Model):
    """One e-mail message by its key (``mamori.core.mail.send_once``): claimed while it is being
    sent, and marked accepted once the mail server took it, so a task that runs again does not
    send it twice."""

    key = models.CharField(_("key"), max_length=200, unique=True)
    recipient = models.CharField(_("recipient"), max_length=254)
    subject = models.CharField(_("subject"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    accepted_at = models.DateTimeField(_("accepted by the mail server"), null=True, blank=True)

    class Meta:
        verbose_name = _("mail receipt")
        verbose_name_plural = _("mail receipts")

    def __str__(self) -> str:
        return self.key


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
