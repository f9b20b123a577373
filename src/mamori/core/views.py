from __future__ import annotations

from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache

from mamori.core import readiness


@never_cache
def healthz(request):
    """Liveness: this process answers and its database does. Cheap by design; readiness is
    ``readyz``."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        return JsonResponse({"status": "error", "database": "unavailable"}, status=503)
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request):
    """Readiness: every component this instance depends on (core/readiness.py); 503 when one
    of them is not ready. No login, nothing secret in it."""
    report = readiness.recent_report()
    return JsonResponse(report.as_json(), status=200 if report.ready else 503)
