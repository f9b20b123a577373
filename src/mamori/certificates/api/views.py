from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.generics import RetrieveAPIView
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from mamori.certificates.api.serializers import CertificateSerializer, PublicCertificateSerializer
from mamori.certificates.models import Certificate
from mamori.core.ratelimit import SiteWideRateThrottle
from mamori.organisations.access import Access
from mamori.verification.api.serializers import AssuranceSerializer
from mamori.verification.services import continuous_assurance


class CertificateViewSet(viewsets.ReadOnlyModelViewSet):
    """Certificates of the token's organisation (or issued by its certification body)."""

    serializer_class = CertificateSerializer
    queryset = Certificate.objects.none()
    lookup_field = "number"
    lookup_value_regex = "[A-Za-z0-9-]{1,32}"

    def get_queryset(self):
        return (
            Certificate.objects.visible_to(Access.for_request(self.request))
            .select_related("certification_body")
            .order_by("-issued_on", "number")
        )

    @extend_schema(responses=AssuranceSerializer)
    @action(detail=True, methods=["get"])
    def assurance(self, request, number=None):
        """Continuous assurance of the certified organisation: of its in-scope hosts, how many
        checked in recently and how many pass each control now. Figures only, never hosts."""
        certificate = self.get_object()
        return Response(continuous_assurance(certificate.organisation_id).as_dict())


class PublicCertificateView(RetrieveAPIView):
    """Verify a certificate by number. No login; nothing confidential."""

    serializer_class = PublicCertificateSerializer
    permission_classes = [AllowAny]
    authentication_classes: list = []
    # Counted once for the whole site, per client address (core/ratelimit.py).
    throttle_classes = [SiteWideRateThrottle]
    throttle_scope = "public"
    queryset = Certificate.objects.select_related("certification_body")

    def get_object(self):
        return get_object_or_404(self.get_queryset(), number=self.kwargs["number"].strip().upper())
