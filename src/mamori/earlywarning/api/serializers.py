from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from mamori.core.choices import CONTROL_LABELS
from mamori.core.text import validate_single_line
from mamori.earlywarning import display
from mamori.earlywarning.models import (
    Alert,
    AlertState,
    Asset,
    AssetKind,
    VerificationMethod,
)
from mamori.earlywarning.ownership import txt_record_name


class TextsSerializer(serializers.Serializer):
    ja = serializers.CharField()
    en = serializers.CharField()


class HistoryEntrySerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    action = serializers.CharField(help_text="e.g. `earlywarning.alert.state`")
    actor = serializers.CharField(help_text="The user's name, or `system`.")
    state_from = serializers.CharField(allow_blank=True)
    state_to = serializers.CharField(allow_blank=True)
    reason = serializers.CharField(allow_blank=True)


class AlertSerializer(serializers.ModelSerializer):
    """An alert as lists show it (no evidence)."""

    # Empty when the alert concerns none of the five controls (the schema says so).
    control = serializers.ChoiceField(
        choices=list(CONTROL_LABELS.items()), allow_blank=True, read_only=True
    )

    asset_value = serializers.SerializerMethodField()
    grading = serializers.CharField(
        read_only=True, help_text="Admiralty grading: reliability letter and credibility number."
    )
    overdue = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField(help_text="The alert's page.")

    class Meta:
        model = Alert
        fields = [
            "id",
            "organisation",
            "type",
            "state",
            "category",
            "severity",
            "control",
            "asset",
            "asset_value",
            "host",
            "ip",
            "port",
            "hostname",
            "cve",
            "advisory",
            "package",
            "installed_version",
            "kev",
            "kev_due",
            "epss",
            "epss_percentile",
            "reliability",
            "credibility",
            "grading",
            "tlp",
            "first_seen",
            "last_seen",
            "times_seen",
            "due_at",
            "overdue",
            "acknowledged_at",
            "mitigated_at",
            "closed_at",
            "reopened",
            "risk_accepted_until",
            "reason",
            "url",
        ]
        read_only_fields = fields

    def get_asset_value(self, alert) -> str | None:
        return str(alert.asset) if alert.asset_id else None

    def get_overdue(self, alert) -> bool:
        now = self.context.get("now")
        return bool(alert.is_open and alert.due_at is not None and now and alert.due_at < now)

    def get_url(self, alert) -> str:
        path = reverse("earlywarning:alert", args=[alert.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path


class AlertDetailSerializer(AlertSerializer):
    evidence = serializers.JSONField(
        read_only=True,
        help_text="The report row (or supplier notice) as it came: values are text as reported "
        "and are never interpreted.",
    )
    remediation = serializers.SerializerMethodField()
    history = serializers.SerializerMethodField()

    class Meta(AlertSerializer.Meta):
        fields = [*AlertSerializer.Meta.fields, "evidence", "remediation", "history"]
        read_only_fields = fields

    @extend_schema_field(TextsSerializer)
    def get_remediation(self, alert) -> dict:
        return dict(display.remediation_texts(alert))

    @extend_schema_field(HistoryEntrySerializer(many=True))
    def get_history(self, alert) -> list[dict]:
        return self.context.get("history", [])


class AlertStateSerializer(serializers.Serializer):
    """A lifecycle change: `acknowledged`, `mitigated`, `closed`, `risk_accepted` (with a reason
    and `until`, at most a year ahead), `false_positive` (with a reason), or `new` to reopen
    (with a reason)."""

    state = serializers.ChoiceField(choices=AlertState.choices)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")
    until = serializers.DateField(required=False, allow_null=True, default=None)


class AssetSerializer(serializers.ModelSerializer):
    # Empty until the claim is verified.
    method = serializers.ChoiceField(
        choices=VerificationMethod.choices, allow_blank=True, read_only=True
    )
    txt_record = serializers.SerializerMethodField(
        help_text="Domains: the name where the TXT record with `verification_token` goes."
    )

    class Meta:
        model = Asset
        fields = [
            "id",
            "organisation",
            "kind",
            "value",
            "include_subdomains",
            "label",
            "state",
            "method",
            "verified_at",
            "reason",
            "txt_record",
            "verification_token",
            "last_checked_at",
            "last_check_result",
            "created_at",
        ]
        read_only_fields = fields

    def get_txt_record(self, asset) -> str | None:
        return txt_record_name(asset.value) if asset.kind == AssetKind.DOMAIN else None


class AssetCreateSerializer(serializers.Serializer):
    """A claim to register, pending verification. `organisation` may be left out when the
    caller acts for one organisation only (a token always does)."""

    organisation = serializers.IntegerField(required=False)
    kind = serializers.ChoiceField(choices=AssetKind.choices)
    value = serializers.CharField(max_length=300)
    include_subdomains = serializers.BooleanField(required=False, default=False)
    label = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=200,
        default="",
        validators=[validate_single_line],
    )
