from rest_framework import serializers

from mamori.organisations.models import Organisation


class OrganisationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Organisation
        fields = [
            "id",
            "name_ja",
            "name_en",
            "category",
            "corporate_number",
            "country",
            "identity_verified",
        ]
        read_only_fields = fields
