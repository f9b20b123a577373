"""Requests that can name nothing are refused before any view looks them up."""

from __future__ import annotations

from django.http import Http404


class RejectNulPathMiddleware:
    """No URL of ours contains a NUL character, and PostgreSQL refuses one in a query (a 500 when a
    view looks the path parameter up). Answer 404 (JSON under /api/) before any view runs."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path:
            raise Http404
        return self.get_response(request)
