"""The reporting API: an organisation's board packs (its administrators and board members;
a token sees its own organisation's only, anyone else's do not exist for it: 404) and the sector
dashboard's figures (the scheme owner and observers; everyone else 404). Read-only: packs are
made and signed on the pages and by the command, where the owner confirms with a TOTP code."""

from __future__ import annotations

import datetime as dt

from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from mamori.core.api import path_id
from mamori.organisations.access import Access
from mamori.reporting import benchmark, permissions
from mamori.reporting.api.serializers import BoardPackDetailSerializer, BoardPackSerializer
from mamori.reporting.models import BoardPack
from mamori.verification.api.serializers import ErrorSerializer

ERRORS = {401: ErrorSerializer, 404: ErrorSerializer}


class BoardPackViewSet(viewsets.ReadOnlyModelViewSet):
    """Board packs of the organisations whose packs the caller reads, the latest period first."""

    queryset = BoardPack.objects.none()
    serializer_class = BoardPackSerializer

    def get_queryset(self):
        found = BoardPack.objects.visible_to(Access.for_request(self.request))
        if self.action == "list":
            found = found.defer("content")
        return found.order_by("-period_to", "-period_from", "-version", "-pk")

    def get_object(self):
        return get_object_or_404(self.get_queryset(), pk=path_id(self.kwargs.get("pk")))

    @extend_schema(responses={200: BoardPackSerializer(many=True), **ERRORS})
    def list(self, request):
        return super().list(request)

    @extend_schema(responses={200: BoardPackDetailSerializer, **ERRORS})
    def retrieve(self, request, pk=None):
        return Response(BoardPackDetailSerializer(self.get_object()).data)


class SectorView(APIView):
    """The sector dashboard's figures of a sampled day (the latest by default): certification
    by category, each headline metric's quantiles by group (``mamori.peers/1``), the controls
    failing most, supplier hot spots. No organisation is named; nothing below k = 5."""

    @extend_schema(
        parameters=[
            OpenApiParameter("day", OpenApiTypes.DATE, description="A sampled day (YYYY-MM-DD).")
        ],
        responses={200: OpenApiTypes.OBJECT, 400: ErrorSerializer, **ERRORS},
    )
    def get(self, request):
        if not permissions.can_read_sector(Access.for_request(request)):
            raise Http404
        value = request.query_params.get("day") or ""
        try:
            day = dt.date.fromisoformat(value) if value else None
        except ValueError:
            raise ValidationError({"day": [_("Give the day as YYYY-MM-DD.")]}) from None
        return Response(benchmark.dashboard(day))
