"""Request body limits, enforced before any body byte is read.

Without them Django streamed every multipart upload to a temporary file before a view could
look at its size: a 300 MiB upload to any page (anonymous visitors included) filled the
temporary directory before the 10 MB check refused it. Now:

- no request body larger than ``MAMORI_REQUEST_MAX_BYTES`` is read, whatever the URL;
- a view that takes a file declares its own limit with ``@body_limit(...)`` (the file's
  per-purpose limit plus room for the form around it); every other view takes no more than
  Django's form-data limit (``DATA_UPLOAD_MAX_MEMORY_SIZE``);
- a body announced with ``Content-Length`` above the limit is answered 413 at once (JSON under
  ``/api/``, a short page elsewhere), unread;
- a chunked body (no ``Content-Length``) is read here, up to the limit and no further: past
  it the answer is 413; within it the body is handed on with its real length (Django reads a
  body without ``Content-Length`` as empty, so such uploads silently lost their file before).
  It is held in memory (at most the view's limit, 20 MiB at the very most), never in the
  temporary directory. Servers that do not de-chunk the body for the application (Django's
  development server) get 411.
"""

from __future__ import annotations

import io
from collections.abc import Callable

from django.conf import settings
from django.contrib.humanize.templatetags.humanize import intcomma
from django.core.handlers.wsgi import LimitedStream
from django.http import HttpResponse, JsonResponse
from django.template.defaultfilters import filesizeformat
from django.template.loader import render_to_string
from django.utils.translation import gettext as _

READ_CHUNK = 64 * 1024


def body_limit(limit: Callable[[], int]):
    """Declare the largest request body a view reads: ``limit()`` is asked per request, so a
    limit read from settings follows them. Put it outermost (above ``csrf_exempt`` and the
    like); on a class-based view, set ``max_request_body`` on the class instead."""

    def decorate(view):
        view.max_request_body = limit
        return view

    return decorate


def limit_for(view) -> int:
    """The most a request to ``view`` may send: its declared limit, else Django's form-data
    limit; never more than the global maximum."""
    declared = getattr(view, "max_request_body", None)
    if declared is None:  # DRF's as_view() keeps the class on the function
        declared = getattr(getattr(view, "cls", None), "max_request_body", None)
    limit = declared() if declared is not None else settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return min(limit, settings.REQUEST_MAX_BYTES)


def upload_limit(file_limit: Callable[[], int]) -> Callable[[], int]:
    """A form with a file: the file's limit plus room for the other fields (Django's
    form-data limit), framing included."""
    return lambda: file_limit() + settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def _content_length(request) -> int | None:
    raw = request.META.get("CONTENT_LENGTH")
    if raw in (None, ""):
        return None
    try:
        return max(int(raw), 0)
    except ValueError:
        return None


def _is_chunked(request) -> bool:
    return "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()


def too_large(request, limit: int) -> HttpResponse:
    """413 with the limit: JSON under /api/, a short page elsewhere (no session or user is
    needed to render it, so it can answer before either is looked at)."""
    detail = _(
        "The request is larger than the limit of %(bytes)s bytes (%(size)s); nothing was "
        "read or saved."
    ) % {"bytes": intcomma(limit), "size": filesizeformat(limit)}
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": detail, "code": "too_large"}, status=413)
    page = render_to_string("errors/413.html", {"detail": detail, "title": _("Too large")})
    return HttpResponse(page, status=413)


def length_required(request) -> HttpResponse:
    detail = _("Send the request with a Content-Length header.")
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": detail, "code": "length_required"}, status=411)
    page = render_to_string("errors/413.html", {"detail": detail, "title": _("Length required")})
    return HttpResponse(page, status=411)


class RequestBodyLimitMiddleware:
    """Place it before ``CsrfViewMiddleware``: the CSRF check is the first to read a body."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        length = _content_length(request)
        if length is not None and length > settings.REQUEST_MAX_BYTES:
            return too_large(request, settings.REQUEST_MAX_BYTES)
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        limit = limit_for(view_func)
        length = _content_length(request)
        if length is not None:
            return too_large(request, limit) if length > limit else None
        if not _is_chunked(request):
            return None
        if not request.META.get("wsgi.input_terminated"):
            # The server hands the raw chunked stream on: its end cannot be found safely.
            return length_required(request)
        body = _read_limited(request.META["wsgi.input"], limit)
        if body is None:
            return too_large(request, limit)
        request.META["CONTENT_LENGTH"] = str(len(body))
        request._stream = LimitedStream(io.BytesIO(body), len(body))
        return None


def _read_limited(stream, limit: int) -> bytes | None:
    """The whole body if it is at most ``limit`` bytes, else None: reading stops at the first
    chunk past the limit and what was read is dropped."""
    body = bytearray()
    while chunk := stream.read(READ_CHUNK):
        if len(body) + len(chunk) > limit:
            return None
        body += chunk
    return bytes(body)
