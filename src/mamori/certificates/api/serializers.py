from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from mamori.certificates.models import Certificate, Status


class PublicCertificateSerializer(serializers.ModelSerializer):
    """What anyone may know about a certificate: nothing confidential."""

    organisation = serializers.SerializerMethodField()
    organisation_en = serializers.CharField(source="organisation_name_en")
    scope = serializers.CharField(source="scope_text")
    issued = serializers.DateField(source="issued_on")
    expires = serializers.DateField(source="expires_on")
    status = serializers.SerializerMethodField()
    certification_body = serializers.SerializerMethodField()

    class Meta:
        model = Certificate
        fields = [
            "number",
            "organisation",
            "organisation_en",
            "level",
            "scope",
            "issued",
            "expires",
            "status",
            "certification_body",
        ]
        read_only_fields = fields

    def get_organisation(self, certificate) -> str:
        return certificate.organisation_name_ja

    @extend_schema_field(serializers.ChoiceField(choices=Status.choices))
    def get_status(self, certificate) -> str:
        return certificate.status

    def get_certification_body(self, certificate) -> str:
        return certificate.certification_body.name_ja


class CertificateSerializer(PublicCertificateSerializer):
    organisation_id = serializers.IntegerField(read_only=True)
    # Null for a Plus certificate, which comes from a Plus audit, not a self-assessment.
    assessment_id = serializers.IntegerField(read_only=True, allow_null=True)
    revoked_at = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta(PublicCertificateSerializer.Meta):
        fields = [
            *PublicCertificateSerializer.Meta.fields,
            "organisation_id",
            "assessment_id",
            "revoked_at",
        ]
        read_only_fields = fields
