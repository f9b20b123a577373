from __future__ import annotations

from rest_framework import serializers

from mamori.reporting.models import BoardPack


class BoardPackSerializer(serializers.ModelSerializer):
    """A board pack as lists show it: its period, version, digest and signature."""

    organisation = serializers.IntegerField(source="organisation_id", read_only=True)
    rendered = serializers.SerializerMethodField()

    class Meta:
        model = BoardPack
        fields = [
            "id",
            "organisation",
            "period_from",
            "period_to",
            "version",
            "quarterly",
            "digest",
            "created_at",
            "rendered",
            "signed_at",
            "signer_name",
            "meeting_date",
            "minutes_reference",
        ]
        read_only_fields = fields

    def get_rendered(self, board_pack: BoardPack) -> bool:
        """Whether the PDF and XLSX files are ready to download on the pack's page."""
        return board_pack.rendered_at is not None


class BoardPackDetailSerializer(BoardPackSerializer):
    """A board pack with its content (``mamori.boardpack/1``: statuses, figures now and
    before, trends, decisions), whose digest the owner signs."""

    content = serializers.JSONField(read_only=True)
    comment = serializers.CharField(read_only=True)

    class Meta(BoardPackSerializer.Meta):
        fields = [*BoardPackSerializer.Meta.fields, "comment", "content"]
        read_only_fields = fields
