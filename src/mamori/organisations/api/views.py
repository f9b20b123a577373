from rest_framework import viewsets

from mamori.organisations.access import Access
from mamori.organisations.api.serializers import OrganisationSerializer
from mamori.organisations.models import Organisation


class OrganisationViewSet(viewsets.ReadOnlyModelViewSet):
    """Organisations the token's user may see."""

    serializer_class = OrganisationSerializer
    queryset = Organisation.objects.none()

    def get_queryset(self):
        return Organisation.objects.visible_to(Access.for_request(self.request)).order_by("pk")
