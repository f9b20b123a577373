from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from mamori.assessments.models import (
    Appeal,
    AppealOutcome,
    Assessment,
    Decision,
    Level,
    Outcome,
    Verdict,
)


class ProgressSerializer(serializers.Serializer):
    answered = serializers.IntegerField()
    required = serializers.IntegerField()


class DeclarationSerializer(serializers.Serializer):
    name = serializers.CharField()
    title = serializers.CharField()
    declared_at = serializers.DateTimeField(allow_null=True)
    valid = serializers.BooleanField()


class AppealSerializer(serializers.ModelSerializer):
    round = serializers.IntegerField(source="decision.round", read_only=True)
    lodged_by = serializers.CharField(source="lodged_by.username", read_only=True)
    reviewer = serializers.CharField(
        source="reviewer.username", read_only=True, allow_null=True, default=None
    )

    class Meta:
        model = Appeal
        fields = [
            "id",
            "round",
            "status",
            "grounds",
            "lodged_by",
            "lodged_at",
            "reviewer",
            "decided_at",
            "reason",
        ]
        read_only_fields = fields


class AssessmentSerializer(serializers.ModelSerializer):
    reference = serializers.CharField(read_only=True)
    organisation_name = serializers.CharField(source="organisation.name_ja", read_only=True)
    catalogue = serializers.CharField(source="catalogue.version", read_only=True)
    assessor = serializers.CharField(
        source="assessor.username", read_only=True, allow_null=True, default=None
    )
    declaration = serializers.SerializerMethodField()
    appeal = serializers.SerializerMethodField()

    class Meta:
        model = Assessment
        fields = [
            "id",
            "reference",
            "organisation",
            "organisation_name",
            "catalogue",
            "level",
            "state",
            "round",
            "certification_body",
            "assessor",
            "complete_by",
            "submitted_at",
            "feedback_due",
            "decided_at",
            "declaration",
            "appeal",
        ]
        read_only_fields = fields

    @extend_schema_field(AppealSerializer(allow_null=True))
    def get_appeal(self, assessment) -> dict | None:
        """The latest appeal (there is at most one per fail decision), or null."""
        appeals = list(assessment.appeals.all())  # prefetched by the view set
        return AppealSerializer(appeals[-1]).data if appeals else None

    @extend_schema_field(DeclarationSerializer)
    def get_declaration(self, assessment) -> dict:
        return {
            "name": assessment.declared_name,
            "title": assessment.declared_title,
            "declared_at": assessment.declared_at,
            "valid": assessment.declaration_valid,
        }


class AssessmentCreateSerializer(serializers.Serializer):
    organisation = serializers.IntegerField(min_value=1)
    certification_body = serializers.IntegerField(min_value=1)
    level = serializers.ChoiceField(choices=Level.choices, default=Level.CE)


class MarkSerializer(serializers.Serializer):
    verdict = serializers.ChoiceField(choices=Verdict.choices)
    comment = serializers.CharField(allow_blank=True)
    round = serializers.IntegerField()


class AnswerSerializer(serializers.Serializer):
    question = serializers.CharField()
    value = serializers.JSONField(allow_null=True)
    version = serializers.IntegerField()
    updated_at = serializers.DateTimeField(allow_null=True)
    mark = MarkSerializer(allow_null=True)


class AnswerWriteSerializer(serializers.Serializer):
    value = serializers.JSONField(
        allow_null=True,
        help_text="The answer: a string for yes_no "
        "and choice, a list for multi_choice, a number, a string, or a "
        "list of row objects for an inventory table; null clears it.",
    )
    version = serializers.IntegerField(
        min_value=0, help_text="The version you edited (0 when there was no answer yet)."
    )


class MarkWriteSerializer(serializers.Serializer):
    question = serializers.CharField(max_length=16)
    verdict = serializers.ChoiceField(choices=Verdict.choices)
    comment = serializers.CharField(allow_blank=True, required=False, default="", max_length=4000)


class DecisionWriteSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=Outcome.choices)
    summary = serializers.CharField(allow_blank=True, required=False, default="", max_length=4000)


class DecisionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Decision
        fields = ["round", "outcome", "summary", "decided_at"]
        read_only_fields = fields


class AppealWriteSerializer(serializers.Serializer):
    grounds = serializers.CharField(
        max_length=4000, help_text="Why the fail decision is wrong: question numbers and evidence."
    )


class AppealDecisionWriteSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=AppealOutcome.choices)
    reason = serializers.CharField(
        max_length=4000, help_text="The reason, which the applicant reads."
    )


class ClarificationReplySerializer(serializers.Serializer):
    message = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=4000,
        default="",
        help_text="What the applicant changed or adds, for the assessor (optional).",
    )
