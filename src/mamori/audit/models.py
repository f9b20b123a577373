from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class AuditEvent(models.Model):
    """One append-only, hash-chained entry of the audit trail."""

    seq = models.PositiveBigIntegerField(_("sequence"), unique=True)
    created_at = models.DateTimeField(_("time"))
    # Plain ids, not foreign keys: deleting a user or an organisation must not rewrite history
    # (a SET_NULL would change hashed fields and make the intact trail look tampered with).
    actor_id = models.PositiveBigIntegerField(_("actor"), null=True, blank=True)
    actor_name = models.CharField(_("actor name"), max_length=150, blank=True)
    action = models.CharField(_("action"), max_length=64)
    object_type = models.CharField(_("object type"), max_length=64)
    object_id = models.CharField(_("object id"), max_length=64)
    organisation_id = models.PositiveBigIntegerField(
        _("organisation"), null=True, blank=True, db_index=True
    )
    details = models.JSONField(_("details"), default=dict)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["seq"]
        indexes = [models.Index(fields=["object_type", "object_id"])]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.object_type}:{self.object_id}"

    @property
    def actor(self):
        """The user who acted, if they still exist (the id and name stay in the entry anyway)."""
        from django.contrib.auth import get_user_model

        return get_user_model().objects.filter(pk=self.actor_id).first() if self.actor_id else None

    @property
    def organisation(self):
        from mamori.organisations.models import Organisation

        if not self.organisation_id:
            return None
        return Organisation.objects.filter(pk=self.organisation_id).first()

    def chain_fields(self) -> dict:
        return {
            "seq": self.seq,
            "created_at": self.created_at.isoformat(),
            "actor_id": self.actor_id,
            "actor_name": self.actor_name,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "organisation_id": self.organisation_id,
            "details": self.details,
        }


class AuditHead(models.Model):
    """The newest entry's sequence and hash. Locking this one row serialises appends, and it
    lets verification notice entries removed from the end of the log."""

    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64)

    class Meta:
        verbose_name = _("audit head")

    def __str__(self) -> str:
        return f"head #{self.seq}"
