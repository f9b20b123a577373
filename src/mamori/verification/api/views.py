"""The verification API: evidence upload (agent tokens allowed here only) and read-only hosts."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from mamori.accounts.authentication import OrganisationTokenAuthentication
from mamori.core.errors import NotAllowed
from mamori.organisations.access import Access
from mamori.verification import permissions, services
from mamori.verification.api.serializers import (
    ErrorSerializer,
    EvidenceSerializer,
    HostDetailSerializer,
    HostSerializer,
    UploadResultSerializer,
)
from mamori.verification.models import Host
from mamori.verification.services.ingest import max_evidence_bytes


def _content_length(request) -> int | None:
    try:
        return int(request.META.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None


class EvidenceUploadView(APIView):
    """Upload one `mamori.evidence/1` document (JSON, optionally gzip-compressed) for the token's
    organisation. The same evidence sent again is acknowledged, not stored twice."""

    authentication_classes = [OrganisationTokenAuthentication]
    permission_classes = [IsAuthenticated]
    # The request body limit (core/bodylimit.py): the evidence as sent, before decompression.
    max_request_body = staticmethod(max_evidence_bytes)

    def initialize_request(self, request, *args, **kwargs):
        # The one place an agent token is accepted: its authentication checks this flag.
        request._agent_upload = True
        return super().initialize_request(request, *args, **kwargs)

    @extend_schema(
        request={"application/json": OpenApiTypes.OBJECT},
        responses={
            201: UploadResultSerializer,
            200: OpenApiResponse(UploadResultSerializer, description="A duplicate, acknowledged."),
            400: ErrorSerializer,
            401: ErrorSerializer,
            403: ErrorSerializer,
            413: ErrorSerializer,
            415: ErrorSerializer,
            422: ErrorSerializer,
        },
        auth=[{"tokenAuth": []}],
    )
    def post(self, request):
        token = request.auth
        if token is None:
            raise NotAuthenticated()
        access = Access.for_request(request)
        if not permissions.can_upload(access, token.organisation_id):
            raise NotAllowed(_("This token's user is no longer a member of its organisation."))
        content_type = request.META.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise services.UnsupportedEncoding(_("Send the evidence as application/json."))
        raw = services.read_body(
            request._request,
            content_length=_content_length(request),
            content_encoding=request.META.get("HTTP_CONTENT_ENCODING", ""),
        )
        outcome = services.accept_upload(
            services.AgentUpload(
                organisation=token.organisation, body=raw, user=request.user, token=token
            )
        )
        body = {
            "host": outcome.host.pk,
            "evidence": outcome.evidence.pk,
            "duplicate": outcome.duplicate,
            "controls": outcome.controls,
        }
        code = status.HTTP_200_OK if outcome.duplicate else status.HTTP_201_CREATED
        return Response(body, status=code)


class HostViewSet(viewsets.ReadOnlyModelViewSet):
    """Hosts of the token's organisation, or of organisations that submitted an assessment to
    the token's certification body. Outsiders get 404."""

    queryset = Host.objects.none()
    serializer_class = HostSerializer

    def get_queryset(self):
        hosts = (
            Host.objects.visible_to(Access.for_request(self.request))
            .select_related("organisation", "latest_evaluation")
            .order_by("pk")
        )
        if self.action != "retrieve":
            hosts = hosts.defer("latest_evaluation__result", "latest_evaluation__findings_en")
        return hosts

    def get_serializer_class(self):
        return HostDetailSerializer if self.action == "retrieve" else HostSerializer

    def get_object(self):
        try:
            pk = int(self.kwargs["pk"])
        except (TypeError, ValueError):
            pk = -1
        return get_object_or_404(self.get_queryset(), pk=pk)

    @extend_schema(responses=EvidenceSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="evidence")
    def evidence(self, request, pk=None):
        """The host's collections, newest first, each with its newest evaluation's verdicts."""
        host = self.get_object()
        collections = host.evidence.defer("payload").order_by("-collected_at", "-pk")
        page = self.paginate_queryset(collections)
        services.with_newest_evaluations(page)
        return self.get_paginated_response(EvidenceSerializer(page, many=True).data)
