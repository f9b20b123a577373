"""The verification API: evidence upload and its status (agent tokens allowed there only) and
read-only hosts."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action
from rest_framework.exceptions import NotAuthenticated, NotFound
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from mamori.accounts.authentication import OrganisationTokenAuthentication
from mamori.core.errors import NotAllowed
from mamori.organisations.access import Access
from mamori.verification import intake, permissions, services
from mamori.verification.api.serializers import (
    ErrorSerializer,
    EvidenceSerializer,
    HostDetailSerializer,
    HostSerializer,
    UploadStatusSerializer,
)
from mamori.verification.models import EvidenceUpload, Host, UploadState
from mamori.verification.services.ingest import max_evidence_bytes


def _content_length(request) -> int | None:
    try:
        return int(request.META.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None


# What a pending upload's answers suggest as the wait before asking again (Retry-After).
POLL_AFTER_SECONDS = "2"


def upload_status(request, receipt: EvidenceUpload, *, duplicate: bool | None = None) -> dict:
    """The status document of one upload (UploadStatusSerializer)."""
    evidence = receipt.evidence
    evaluation = evidence.evaluations.order_by("-evaluated_at", "-pk").first() if evidence else None
    body = {
        "upload": receipt.pk,
        "status": receipt.state,
        "status_url": request.build_absolute_uri(
            reverse("api-evidence-upload-status", args=[receipt.pk])
        ),
        "received_at": receipt.received_at,
        "finished_at": receipt.finished_at,
        "host": evidence.host_id if evidence else None,
        "evidence": evidence.pk if evidence else None,
        "controls": evaluation.controls if evaluation else None,
    }
    if duplicate is not None:
        body = {**body, "duplicate": duplicate}
    if receipt.state == UploadState.FAILED:
        body = {**body, "code": receipt.code, "detail": receipt.detail}
    return body


class AgentEndpoint(APIView):
    """An endpoint an agent token may use: uploading evidence and reading its status."""

    authentication_classes = [OrganisationTokenAuthentication]
    permission_classes = [IsAuthenticated]

    def initialize_request(self, request, *args, **kwargs):
        # The only places an agent token is accepted: its authentication checks this flag.
        request._agent_upload = True
        return super().initialize_request(request, *args, **kwargs)


class EvidenceUploadView(AgentEndpoint):
    """Upload one `mamori.evidence/1` document (JSON, optionally gzip-compressed) for the token's
    organisation. The request only reads and stores it and answers `202 Accepted` with a status
    URL (`Location`, and `status_url` in the body); a worker then checks it against the schema
    and evaluates it, and the status becomes `done` (with the verdicts) or `failed` (with the
    reason). On a server without a broker the evaluation runs before the answer, which then
    already says `done`. The same evidence sent again is acknowledged, not stored twice: `200`
    with its status once done, `202` while it is still pending."""

    # The request body limit (core/bodylimit.py): the evidence as sent, before decompression.
    max_request_body = staticmethod(max_evidence_bytes)

    @extend_schema(
        request={"application/json": OpenApiTypes.OBJECT},
        responses={
            202: OpenApiResponse(
                UploadStatusSerializer,
                description="Received and stored; evaluated by a worker. `Location` is the "
                "status URL to poll.",
            ),
            200: OpenApiResponse(
                UploadStatusSerializer, description="A duplicate of evidence already evaluated."
            ),
            400: ErrorSerializer,
            401: ErrorSerializer,
            403: ErrorSerializer,
            411: ErrorSerializer,
            413: ErrorSerializer,
            415: ErrorSerializer,
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
        receipt = intake.accept(
            services.AgentUpload(
                organisation=token.organisation,
                body=raw,
                user=request.user,
                token=token,
                language=get_language() or "ja",
            )
        )
        body = upload_status(request, receipt.upload, duplicate=receipt.duplicate)
        if receipt.duplicate and receipt.upload.state != UploadState.PENDING:
            return Response(body, status=status.HTTP_200_OK)
        headers = {"Location": body["status_url"]}
        if receipt.upload.state == UploadState.PENDING:
            headers["Retry-After"] = POLL_AFTER_SECONDS
        return Response(body, status=status.HTTP_202_ACCEPTED, headers=headers)


class EvidenceUploadStatusView(AgentEndpoint):
    """The state of one upload: `pending`, `done` (with host, evidence and the five verdicts)
    or `failed` (with the reason). The agent token that sent it may read it, and so may the
    organisation's members (with their own token or signed in); anyone else gets 404."""

    authentication_classes = [OrganisationTokenAuthentication, SessionAuthentication]

    @extend_schema(
        responses={200: UploadStatusSerializer, 401: ErrorSerializer, 404: ErrorSerializer},
        auth=[{"tokenAuth": []}, {"cookieAuth": []}],
    )
    def get(self, request, pk: int):
        receipts = EvidenceUpload.objects.visible_to(Access.for_request(request), request.auth)
        receipt = receipts.defer("body").select_related("evidence").filter(pk=pk).first()
        if receipt is None:
            raise NotFound()  # the same answer whether it exists or not
        headers = (
            {"Retry-After": POLL_AFTER_SECONDS} if receipt.state == UploadState.PENDING else {}
        )
        return Response(upload_status(request, receipt), headers=headers)


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
