from django.utils.translation import get_language
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from mamori.verification.models import Evidence, Host, Trigger, UploadState, Verdict


@extend_schema_field(
    {"type": "string", "enum": list(Verdict.values)}, component_name="ControlVerdict"
)
class VerdictField(serializers.ChoiceField):
    """pass, fail or unknown: one schema for the five controls (not one enum per control)."""

    def __init__(self, **kwargs):
        super().__init__(choices=Verdict.choices, **kwargs)


class ControlsSerializer(serializers.Serializer):
    """The five controls' verdicts."""

    firewalls = VerdictField()
    secure_configuration = VerdictField()
    security_update_management = VerdictField()
    user_access_control = VerdictField()
    malware_protection = VerdictField()


def _controls(evaluation) -> dict | None:
    return evaluation.controls if evaluation is not None else None


class EvaluationSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    evaluated_at = serializers.DateTimeField()
    as_of = serializers.DateField()
    catalogue_version = serializers.CharField()
    trigger = serializers.ChoiceField(choices=Trigger.choices)
    controls = ControlsSerializer()
    failed_checks = serializers.IntegerField()
    vulnerabilities = serializers.IntegerField()
    overdue_vulnerabilities = serializers.IntegerField()
    kev_vulnerabilities = serializers.IntegerField()


class EvaluationSerializer(EvaluationSummarySerializer):
    result = serializers.SerializerMethodField(
        help_text="The full `mamori.evaluation/1` document, its texts in the request's language "
        "(Accept-Language: ja or en)."
    )

    @extend_schema_field(serializers.JSONField())
    def get_result(self, evaluation) -> dict:
        return evaluation.localised_result(get_language())


class HostSerializer(serializers.ModelSerializer):
    organisation_name = serializers.CharField(source="organisation.name_ja", read_only=True)
    controls = serializers.SerializerMethodField()
    evaluated_at = serializers.SerializerMethodField()

    class Meta:
        model = Host
        fields = [
            "id",
            "organisation",
            "organisation_name",
            "hostname",
            "machine_id",
            "os_pretty_name",
            "os_id",
            "os_version",
            "architecture",
            "first_seen",
            "last_seen",
            "in_scope",
            "latest_evidence",
            "controls",
            "evaluated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(ControlsSerializer(allow_null=True))
    def get_controls(self, host) -> dict | None:
        return _controls(host.latest_evaluation)

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_evaluated_at(self, host):
        evaluation = host.latest_evaluation
        if evaluation is None:
            return None
        return serializers.DateTimeField().to_representation(evaluation.evaluated_at)


class HostDetailSerializer(HostSerializer):
    evaluation = serializers.SerializerMethodField()

    class Meta(HostSerializer.Meta):
        fields = [*HostSerializer.Meta.fields, "evaluation"]
        read_only_fields = fields

    @extend_schema_field(EvaluationSerializer(allow_null=True))
    def get_evaluation(self, host) -> dict | None:
        evaluation = host.latest_evaluation
        return EvaluationSerializer(evaluation).data if evaluation is not None else None


class EvidenceSerializer(serializers.ModelSerializer):
    evaluation = serializers.SerializerMethodField()

    class Meta:
        model = Evidence
        fields = ["id", "collected_at", "received_at", "digest", "size", "evaluation"]
        read_only_fields = fields

    @extend_schema_field(EvaluationSummarySerializer(allow_null=True))
    def get_evaluation(self, evidence) -> dict | None:
        evaluation = getattr(evidence, "newest_evaluation", None)
        return EvaluationSummarySerializer(evaluation).data if evaluation is not None else None


class UploadStatusSerializer(serializers.Serializer):
    """An upload's state: what ``POST /api/evidence/`` answers and ``status_url`` shows."""

    upload = serializers.IntegerField(help_text="The upload (the receipt of this evidence).")
    status = serializers.ChoiceField(
        choices=UploadState.choices,
        help_text="`pending` while a worker evaluates it, then `done` or `failed`.",
    )
    status_url = serializers.URLField(
        help_text="Where to read this status (also the `Location` header of a 202)."
    )
    duplicate = serializers.BooleanField(
        required=False,
        help_text="In the answer to an upload: the same evidence had been received before.",
    )
    received_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    host = serializers.IntegerField(allow_null=True, help_text="Once done.")
    evidence = serializers.IntegerField(allow_null=True, help_text="Once done.")
    controls = ControlsSerializer(allow_null=True, help_text="Once done: the five verdicts.")
    code = serializers.CharField(
        required=False, help_text="Once failed: `invalid_evidence` or `evaluation_failed`."
    )
    detail = serializers.CharField(
        required=False, help_text="Once failed: the reason, with the JSON path at fault."
    )


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()
    field = serializers.CharField(required=False, help_text="The JSON path at fault, if any.")


class PassingSerializer(serializers.Serializer):
    """How many in-scope hosts that checked in within the window pass each control."""

    firewalls = serializers.IntegerField()
    secure_configuration = serializers.IntegerField()
    security_update_management = serializers.IntegerField()
    user_access_control = serializers.IntegerField()
    malware_protection = serializers.IntegerField()


class AssuranceSerializer(serializers.Serializer):
    window_days = serializers.IntegerField()
    in_scope_hosts = serializers.IntegerField()
    checked_in = serializers.IntegerField()
    passing = PassingSerializer()
