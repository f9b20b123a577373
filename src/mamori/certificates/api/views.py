from django.shortcuts import get_object_or_404
from rest_framework import viewsets
from rest_framework.generics import RetrieveAPIView
from rest_framework.permissions import AllowAny
from rest_framework.throttling import ScopedRateThrottle

from mamori.certificates.api.serializers import CertificateSerializer, PublicCertificateSerializer
from mamori.certificates.models import Certificate
from mamori.core.access import Access


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


class PublicCertificateView(RetrieveAPIView):
    """Verify a certificate by number. No login; nothing confidential."""

    serializer_class = PublicCertificateSerializer
    permission_classes = [AllowAny]
    authentication_classes: list = []
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "public"
    queryset = Certificate.objects.select_related("certification_body")

    def get_object(self):
        return get_object_or_404(self.get_queryset(), number=self.kwargs["number"].strip().upper())
