from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from mamori.assessments import appeals, services
from mamori.assessments.api.serializers import (
    AnswerSerializer,
    AnswerWriteSerializer,
    AppealDecisionWriteSerializer,
    AppealSerializer,
    AppealWriteSerializer,
    AssessmentCreateSerializer,
    AssessmentSerializer,
    ClarificationReplySerializer,
    DecisionSerializer,
    DecisionWriteSerializer,
    MarkWriteSerializer,
)
from mamori.assessments.models import Assessment
from mamori.core.errors import MamoriError
from mamori.organisations.access import Access
from mamori.organisations.models import Organisation


def _answer_payload(snapshot: services.Snapshot, qid: str) -> dict:
    answer = snapshot.answers.get(qid)
    mark = snapshot.marks.get(qid)
    return {
        "question": qid,
        "value": answer.value if answer else None,
        "version": answer.version if answer else 0,
        "updated_at": answer.updated_at if answer else None,
        "mark": {"verdict": mark.verdict, "comment": mark.comment, "round": mark.round}
        if mark
        else None,
    }


class AssessmentViewSet(viewsets.ReadOnlyModelViewSet):
    """Assessments the token may see: its organisation's, or those submitted to its
    certification body. Outsiders get 404."""

    serializer_class = AssessmentSerializer
    queryset = Assessment.objects.none()

    def get_queryset(self):
        return (
            Assessment.objects.visible_to(self.access)
            .select_related("organisation", "catalogue", "assessor")
            .prefetch_related("appeals__decision", "appeals__lodged_by", "appeals__reviewer")
            .order_by("pk")
        )

    @property
    def access(self) -> Access:
        return Access.for_request(self.request)

    def _respond(self, assessment_id: int, code: int = status.HTTP_200_OK) -> Response:
        assessment = self.get_queryset().get(pk=assessment_id)
        return Response(AssessmentSerializer(assessment).data, status=code)

    @extend_schema(request=AssessmentCreateSerializer, responses={201: AssessmentSerializer})
    def create(self, request):
        data = AssessmentCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        organisation = Organisation.objects.filter(
            pk=data.validated_data["organisation"], pk__in=self.access.organisation_ids
        ).first()
        if organisation is None:
            raise MamoriError("Unknown organisation.", field="organisation")
        body = Organisation.objects.filter(pk=data.validated_data["certification_body"]).first()
        if body is None:
            raise MamoriError("Unknown certification body.", field="certification_body")
        assessment = services.start_assessment(
            request.user, self.access, organisation, body, data.validated_data["level"]
        )
        return self._respond(assessment.pk, status.HTTP_201_CREATED)

    @extend_schema(responses=AnswerSerializer(many=True))
    # Every question of the catalogue in one list, not a page: the schema must say so too.
    @action(detail=True, methods=["get"], url_path="answers", pagination_class=None)
    def answers(self, request, pk=None):
        assessment = self.get_object()
        snapshot = services.Snapshot.load(assessment)
        return Response([_answer_payload(snapshot, q.qid) for q in snapshot.questions])

    @extend_schema(request=AnswerWriteSerializer, responses=AnswerSerializer)
    @action(detail=True, methods=["put"], url_path=r"answers/(?P<qid>[A-Za-z0-9.]{1,16})")
    def answer(self, request, pk=None, qid=None):
        assessment = self.get_object()
        data = AnswerWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.save_answer(
            request.user,
            self.access,
            assessment.pk,
            qid,
            data.validated_data["value"],
            data.validated_data["version"],
        )
        assessment.refresh_from_db()
        return Response(_answer_payload(services.Snapshot.load(assessment), qid))

    @extend_schema(request=None, responses=AssessmentSerializer)
    @action(detail=True, methods=["post"])
    def submit(self, request, pk=None):
        assessment = self.get_object()
        services.submit(request.user, self.access, assessment.pk)
        return self._respond(assessment.pk)

    @extend_schema(request=ClarificationReplySerializer, responses=AssessmentSerializer)
    @action(detail=True, methods=["post"])
    def respond(self, request, pk=None):
        """Send a clarification back to the assessor, with an optional message."""
        assessment = self.get_object()
        data = ClarificationReplySerializer(data=request.data or {})
        data.is_valid(raise_exception=True)
        services.respond_to_clarification(
            request.user, self.access, assessment.pk, data.validated_data["message"]
        )
        return self._respond(assessment.pk)

    @extend_schema(request=None, responses=AssessmentSerializer)
    @action(detail=True, methods=["post"])
    def resubmit(self, request, pk=None):
        assessment = self.get_object()
        services.resubmit(request.user, self.access, assessment.pk)
        return self._respond(assessment.pk)

    @extend_schema(request=MarkWriteSerializer, responses=AnswerSerializer)
    @action(detail=True, methods=["post"])
    def marks(self, request, pk=None):
        """Assessors: record a verdict on one answer."""
        assessment = self.get_object()
        data = MarkWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        qid = data.validated_data["question"]
        services.mark_answer(
            request.user,
            self.access,
            assessment.pk,
            qid,
            data.validated_data["verdict"],
            data.validated_data["comment"],
        )
        assessment.refresh_from_db()
        return Response(_answer_payload(services.Snapshot.load(assessment), qid))

    @extend_schema(request=None, responses=AssessmentSerializer)
    @action(detail=True, methods=["post"])
    def clarification(self, request, pk=None):
        """Assessors: return the answers marked 'needs information' to the applicant."""
        assessment = self.get_object()
        services.request_clarification(request.user, self.access, assessment.pk)
        return self._respond(assessment.pk)

    @extend_schema(request=DecisionWriteSerializer, responses={201: DecisionSerializer})
    @action(detail=True, methods=["post"])
    def decision(self, request, pk=None):
        """Assessors: pass (issues the certificate) or fail (issues the advice report)."""
        assessment = self.get_object()
        data = DecisionWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        decision = services.decide(
            request.user,
            self.access,
            assessment.pk,
            data.validated_data["outcome"],
            data.validated_data["summary"],
        )
        return Response(DecisionSerializer(decision).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=AppealWriteSerializer, responses={201: AppealSerializer})
    @action(detail=True, methods=["post"])
    def appeal(self, request, pk=None):
        """Applicant administrators: appeal the current fail decision, with grounds."""
        assessment = self.get_object()
        data = AppealWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        lodged = appeals.lodge(
            request.user, self.access, assessment.pk, data.validated_data["grounds"]
        )
        return Response(AppealSerializer(lodged).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=AppealDecisionWriteSerializer, responses=AppealSerializer)
    @action(detail=True, methods=["post"], url_path="appeal-decision")
    def appeal_decision(self, request, pk=None):
        """A second assessor of the body (not the one who decided): uphold the fail or overturn
        it (a pass: the certificate is issued)."""
        assessment = self.get_object()
        data = AppealDecisionWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        decided = appeals.decide(
            request.user,
            self.access,
            assessment.pk,
            data.validated_data["outcome"],
            data.validated_data["reason"],
        )
        return Response(AppealSerializer(decided).data)

    def get_object(self):
        try:
            pk = int(self.kwargs["pk"])
        except (TypeError, ValueError):
            pk = -1
        return get_object_or_404(self.get_queryset(), pk=pk)
