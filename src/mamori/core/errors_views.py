"""Error pages: JSON for the API, a page in the user's language elsewhere."""

from django.http import JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _


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
    if _wants_json(request):
        return JsonResponse({"detail": _("Internal error."), "code": "error"}, status=500)
    return render(request, "errors/500.html", status=500)
