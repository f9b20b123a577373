"""Read-only API of Plus audits, scoped like the pages: the organisation's members and the
assessors of the certification body. Outsiders get 404."""

from __future__ import annotations

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from mamori.organisations.access import Access
from mamori.plus import services
from mamori.plus.api.serializers import (
    FrameDeviceSerializer,
    PlusAuditSerializer,
    SampleRoundSerializer,
)
from mamori.plus.models import DeviceCheck, PlusAudit, SampledDevice, TestCase


class PlusAuditViewSet(viewsets.ReadOnlyModelViewSet):
    """Cyber Essentials Plus audits the token may see."""

    serializer_class = PlusAuditSerializer
    queryset = PlusAudit.objects.none()

    def get_queryset(self):
        return (
            PlusAudit.objects.visible_to(Access.for_request(self.request))
            .select_related("organisation", "assessor", "base_certificate", "certificate")
            .order_by("pk")
        )

    def get_object(self):
        try:
            pk = int(self.kwargs["pk"])
        except (TypeError, ValueError):
            pk = -1
        return get_object_or_404(self.get_queryset(), pk=pk)

    @extend_schema(responses=FrameDeviceSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None)
    def devices(self, request, pk=None):
        """The sampling frame now: in-scope agent hosts and the devices listed by hand."""
        audit = self.get_object()
        return Response(
            [
                {
                    "device": row.device.pk if row.device else None,
                    "host": row.host.pk if row.host else None,
                    "name": row.name,
                    "os_build": row.os_build,
                    "kind": row.kind,
                    "kind_confirmed": row.confirmed,
                    "manual": row.manual,
                }
                for row in services.frame(audit)
            ]
        )

    @extend_schema(responses=SampleRoundSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=None)
    def rounds(self, request, pk=None):
        """Each sample round: the draw (seed and frame digest), the sampled devices with their
        TC2/TC3/TC7 results, and the seven test cases."""
        audit = self.get_object()
        rounds = audit.rounds.order_by("number").prefetch_related(
            Prefetch(
                "sampled",
                queryset=SampledDevice.objects.select_related("device").prefetch_related(
                    Prefetch("checks", queryset=DeviceCheck.objects.order_by("code"))
                ),
            ),
            Prefetch(
                "test_cases",
                queryset=TestCase.objects.order_by("code").prefetch_related("attachments"),
            ),
        )
        return Response(SampleRoundSerializer(rounds, many=True).data)
