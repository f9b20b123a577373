"""API conventions shared by every app: errors are JSON with a reason, never a 500."""

from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from mamori.core.errors import MamoriError


def exception_handler(exc, context):
    if isinstance(exc, MamoriError):
        body = {"detail": str(exc.message), "code": exc.code}
        if exc.field:
            body["field"] = exc.field
        return Response(body, status=exc.status)
    if isinstance(exc, ObjectDoesNotExist):
        exc = Http404()
    response = drf_exception_handler(exc, context)
    if (
        response is not None
        and isinstance(response.data, dict)
        and "detail" in response.data
        and "code" not in response.data
    ):
        # DRF's own refusals (404, 401, 403, 405, 415, 429) carry their code on the detail;
        # clients get it in the same place as for every other error.
        response.data["code"] = getattr(response.data["detail"], "code", None) or "error"
    if (
        response is not None
        and isinstance(response.data, dict)
        and response.status_code == status.HTTP_400_BAD_REQUEST
        and "detail" not in response.data
    ):
        response.data = {"detail": "Invalid input.", "code": "invalid", "errors": response.data}
    return response


def path_id(value) -> int:
    """A path's id as a number; anything else (text, zero, beyond a bigint) finds nothing
    (-1, so a 404), never an error."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return -1
    return number if 0 < number < 2**62 else -1
