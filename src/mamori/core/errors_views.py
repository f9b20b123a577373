"""Error pages: JSON for the API, a page in the user's language elsewhere."""

import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.template import loader
from django.utils.translation import gettext as _

# Seconds a client is asked to wait when the database cannot be reached (a restart, a failover).
DATABASE_RETRY_AFTER = 5


def _wants_json(request) -> bool:
    return request.path.startswith("/api/")


def not_found(request, exception=None):
    if _wants_json(request):
        return JsonResponse({"detail": _("Not found."), "code": "not_found"}, status=404)
    return render(request, "errors/404.html", status=404)


def bad_request(request, exception=None):
    if _wants_json(request):
        return JsonResponse(
            {"detail": _("The request could not be read."), "code": "bad_request"}, status=400
        )
    return render(request, "errors/400.html", status=400)


def forbidden(request, exception=None):
    if _wants_json(request):
        return JsonResponse({"detail": _("Not allowed."), "code": "not_allowed"}, status=403)
    return render(request, "errors/403.html", status=403)


def server_error(request):
    # Django calls this while handling the exception, so it is at hand: a database that cannot
    # be reached is a temporary outage (503, try again), not a fault of the request.
    if isinstance(sys.exc_info()[1], (OperationalError, InterfaceError)):
        return database_unavailable(request)
    if _wants_json(request):
        return JsonResponse({"detail": _("Internal error."), "code": "error"}, status=500)
    return render(request, "errors/500.html", status=500)


def database_unavailable(request):
    """503 with Retry-After. The page is rendered without the request: its context processors
    would ask the database again."""
    if _wants_json(request):
        response = JsonResponse(
            {
                "detail": _("The database cannot be reached; try again in a few seconds."),
                "code": "unavailable",
            },
            status=503,
        )
    else:
        response = HttpResponse(loader.render_to_string("errors/503.html"), status=503)
    response["Retry-After"] = str(DATABASE_RETRY_AFTER)
    return response
