"""The early-warning API: an organisation's alerts (list with the inbox's filters, detail with
evidence, remediation and history, lifecycle changes) and its asset registry (list, register).

A token sees its own organisation only; anyone else's alerts and claims do not exist for it
(404). Refusals are JSON with a reason (``core.api.exception_handler``): 400 for bad input with
the field at fault, 403 for a role that may not act, 409 for a state that does not allow it.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from mamori.audit.models import AuditEvent
from mamori.core.api import path_id
from mamori.core.errors import MamoriError
from mamori.earlywarning import alerts, registry
from mamori.earlywarning.api.serializers import (
    AlertDetailSerializer,
    AlertSerializer,
    AlertStateSerializer,
    AssetCreateSerializer,
    AssetSerializer,
)
from mamori.earlywarning.filters import OPEN, AlertFilter, inbox_order
from mamori.earlywarning.models import Alert, AlertState, AlertType, Asset, Severity
from mamori.organisations.access import Access
from mamori.organisations.models import Organisation
from mamori.verification.api.serializers import ErrorSerializer

ERRORS = {
    400: ErrorSerializer,
    401: ErrorSerializer,
    403: ErrorSerializer,
    404: ErrorSerializer,
}
FILTER_PARAMETERS = [
    OpenApiParameter("type", str, enum=AlertType.values, description="Alerts of this type."),
    OpenApiParameter(
        "state",
        str,
        enum=[OPEN, *AlertState.values],
        description="Alerts in this state; `open` is new or acknowledged.",
    ),
    OpenApiParameter("severity", str, enum=Severity.values, description="Of this severity."),
    OpenApiParameter("asset", int, description="About this registered asset (its id)."),
]


def history(alert: Alert) -> list[dict]:
    events = AuditEvent.objects.filter(
        object_type=Alert._meta.label_lower, object_id=str(alert.pk)
    ).order_by("seq")
    return [
        {
            "at": event.created_at,
            "action": event.action,
            "actor": event.actor_name,
            "state_from": (event.details or {}).get("from", ""),
            "state_to": (event.details or {}).get("to", ""),
            "reason": (event.details or {}).get("reason", ""),
        }
        for event in events
    ]


class AlertViewSet(viewsets.ReadOnlyModelViewSet):
    """Alerts of the token's organisation, open ones first, then the most severe, then the most
    recently seen. Outsiders get 404."""

    queryset = Alert.objects.none()
    serializer_class = AlertSerializer

    @property
    def access(self) -> Access:
        return Access.for_request(self.request)

    def get_queryset(self):
        found = Alert.objects.visible_to(self.access).select_related("asset")
        if self.action == "list":
            found = found.defer("evidence")
        return found.order_by("-last_seen", "-pk")

    def get_object(self):
        return get_object_or_404(self.get_queryset(), pk=path_id(self.kwargs.get("pk")))

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "now": timezone.now()}

    def _detail(self, alert: Alert, code: int = status.HTTP_200_OK) -> Response:
        context = {**self.get_serializer_context(), "history": history(alert)}
        return Response(AlertDetailSerializer(alert, context=context).data, status=code)

    @extend_schema(
        parameters=FILTER_PARAMETERS, responses={200: AlertSerializer(many=True), **ERRORS}
    )
    def list(self, request):
        """A value that is not one of a filter's choices is answered 400, naming the filter."""
        assets = Asset.objects.filter(organisation_id__in=self.access.organisation_ids)
        filters = AlertFilter(request.query_params, assets=assets)
        if not filters.is_valid():
            raise ValidationError(filters.errors.get_json_data())
        found = inbox_order(filters.narrow(self.get_queryset()))
        page = self.paginate_queryset(found)
        data = AlertSerializer(page, many=True, context=self.get_serializer_context()).data
        return self.get_paginated_response(data)

    @extend_schema(responses={200: AlertDetailSerializer, **ERRORS})
    def retrieve(self, request, pk=None):
        """One alert with its evidence, remediation (Japanese and English) and history."""
        return self._detail(self.get_object())

    @extend_schema(
        request=AlertStateSerializer,
        responses={
            200: AlertDetailSerializer,
            **ERRORS,
            409: OpenApiResponse(ErrorSerializer, description="The alert's state forbids it."),
        },
    )
    @action(detail=True, methods=["post"])
    def state(self, request, pk=None):
        """Move the alert along its lifecycle (its organisation's administrators and
        contributors). Every change is in the audit trail."""
        alert = self.get_object()
        data = AlertStateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        alert = alerts.change_state(
            request.user,
            self.access,
            alert,
            data.validated_data["state"],
            reason=data.validated_data["reason"],
            until=data.validated_data["until"],
        )
        return self._detail(self.get_queryset().get(pk=alert.pk))


class AssetViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """The asset registry of the token's organisation. A new claim waits for verification: a
    domain by the TXT record at `txt_record` carrying `verification_token`, an address block or
    AS number by the scheme owner's approval."""

    queryset = Asset.objects.none()
    serializer_class = AssetSerializer

    @property
    def access(self) -> Access:
        return Access.for_request(self.request)

    def get_queryset(self):
        return Asset.objects.filter(
            organisation_id__in=self.access.applicant_organisation_ids
        ).order_by("organisation_id", "kind", "value", "pk")

    def get_object(self):
        return get_object_or_404(self.get_queryset(), pk=path_id(self.kwargs.get("pk")))

    def _organisation(self, wanted: int | None) -> Organisation:
        mine = self.access.applicant_organisation_ids
        if wanted is None:
            if len(mine) != 1:
                raise MamoriError(
                    _("Name the organisation the claim is for."), field="organisation"
                )
            (wanted,) = mine
        organisation = Organisation.objects.filter(pk=wanted, pk__in=mine).first()
        if organisation is None:
            raise MamoriError(_("Unknown organisation."), field="organisation")
        return organisation

    @extend_schema(
        request=AssetCreateSerializer,
        responses={
            201: AssetSerializer,
            **ERRORS,
            409: OpenApiResponse(ErrorSerializer, description="Already registered."),
        },
    )
    def create(self, request):
        data = AssetCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        organisation = self._organisation(fields.pop("organisation", None))
        asset = registry.register(request.user, self.access, organisation, **fields)
        return Response(AssetSerializer(asset).data, status=status.HTTP_201_CREATED)
