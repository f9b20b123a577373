from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from mamori.plus.models import (
    AuditState,
    DeviceCheck,
    DeviceKind,
    Outcome,
    PlusAudit,
    Result,
    SampledDevice,
    SampleRound,
    Source,
    TestAttachment,
    TestCase,
)


class PlusAuditSerializer(serializers.ModelSerializer):
    reference = serializers.CharField(read_only=True)
    organisation_name = serializers.CharField(source="organisation.name_ja", read_only=True)
    assessor = serializers.CharField(
        source="assessor.username", read_only=True, allow_null=True, default=None
    )
    state = serializers.ChoiceField(choices=AuditState.choices, read_only=True)
    base_certificate = serializers.CharField(source="base_certificate.number", read_only=True)
    certificate = serializers.SerializerMethodField()
    scope = serializers.CharField(source="scope_text", read_only=True)
    public_addresses = serializers.SerializerMethodField()
    lapsed = serializers.BooleanField(source="is_lapsed", read_only=True)

    class Meta:
        model = PlusAudit
        fields = [
            "id",
            "reference",
            "organisation",
            "organisation_name",
            "certification_body",
            "assessor",
            "state",
            "round",
            "base_certificate",
            "certificate",
            "scope",
            "public_addresses",
            "deadline",
            "retest_due",
            "decided_at",
            "lapsed",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_certificate(self, audit) -> str | None:
        """The Plus certificate's number once the audit passed."""
        certificate = getattr(audit, "certificate", None)
        return certificate.number if certificate else None

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_public_addresses(self, audit) -> list[str]:
        return [line for line in audit.public_addresses.splitlines() if line]


class FrameDeviceSerializer(serializers.Serializer):
    """One device of the sampling frame: an in-scope agent host or a device listed by hand."""

    device = serializers.IntegerField(allow_null=True, help_text="The device id once recorded.")
    host = serializers.IntegerField(allow_null=True)
    name = serializers.CharField()
    os_build = serializers.CharField(allow_blank=True)
    kind = serializers.ChoiceField(choices=[*DeviceKind.choices, ("", "")], allow_blank=True)
    kind_confirmed = serializers.BooleanField()
    manual = serializers.BooleanField()


class DeviceCheckSerializer(serializers.ModelSerializer):
    result = serializers.ChoiceField(source="status", choices=Result.choices)
    source = serializers.ChoiceField(choices=Source.choices)
    evidence_result = serializers.CharField(
        source="evidence_status",
        allow_blank=True,
        help_text="What the evidence said at the last fill (pass, fail or unknown), kept next "
        "to an assessor's override; empty for a device without the agent.",
    )
    evaluation = serializers.IntegerField(source="evaluation_id", allow_null=True)
    facts = serializers.JSONField()

    class Meta:
        model = DeviceCheck
        fields = [
            "code",
            "result",
            "source",
            "evidence_result",
            "evaluation",
            "facts",
            "notes",
            "override_reason",
            "recorded_at",
        ]
        read_only_fields = fields


class SampledDeviceSerializer(serializers.ModelSerializer):
    device = serializers.IntegerField(source="device_id")
    host = serializers.IntegerField(source="device.host_id", allow_null=True)
    name = serializers.CharField(source="device.name")
    manual = serializers.BooleanField(source="device.manual")
    kind = serializers.ChoiceField(choices=DeviceKind.choices)
    checks = DeviceCheckSerializer(many=True)

    class Meta:
        model = SampledDevice
        fields = ["id", "device", "host", "name", "manual", "os_build", "kind", "checks"]
        read_only_fields = fields


class AttachmentSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="original_name")

    class Meta:
        model = TestAttachment
        fields = ["id", "name", "content_type", "size", "sha256", "uploaded_at"]
        read_only_fields = fields


class TestCaseSerializer(serializers.ModelSerializer):
    __test__ = False

    result = serializers.ChoiceField(choices=Result.choices)
    attachments = AttachmentSerializer(many=True)

    class Meta:
        model = TestCase
        fields = ["code", "result", "notes", "recorded_at", "attachments"]
        read_only_fields = fields


class SampleRoundSerializer(serializers.ModelSerializer):
    outcome = serializers.ChoiceField(choices=[*Outcome.choices, ("", "")], allow_blank=True)
    sampled = SampledDeviceSerializer(many=True)
    test_cases = TestCaseSerializer(many=True)

    class Meta:
        model = SampleRound
        fields = [
            "number",
            "draws",
            "drawn_at",
            "seed",
            "frame_digest",
            "frame_size",
            "test_by",
            "testing_started_at",
            "outcome",
            "summary",
            "decided_at",
            "sampled",
            "test_cases",
        ]
        read_only_fields = fields
