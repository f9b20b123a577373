"""Requests that can name nothing are refused before any view looks them up; sessions that are
in use stay alive without a write on every request."""

from __future__ import annotations

import time

from django.http import Http404

# A session in use has its expiry moved on at most this often: the idle timeout
# (MAMORI_SESSION_IDLE_MINUTES) is then exact to within a minute.
SESSION_REFRESH_SECONDS = 60
REFRESHED_KEY = "_mamori_refreshed"


class RejectNulPathMiddleware:
    """No URL of ours contains a NUL character, and PostgreSQL refuses one in a query (a 500 when a
    view looks the path parameter up). Answer 404 (JSON under /api/) before any view runs."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.path:
            raise Http404
        return self.get_response(request)


class SlidingSessionMiddleware:
    """Moves a signed-in session's expiry on while it is used — as ``SESSION_SAVE_EVERY_REQUEST``
    would, but with one write a minute instead of one per request (every page and API call
    of a signed-in user wrote its session row again). A request without a session cookie, or
    with one that names no stored session, creates nothing: public pages set no cookie.
    Listed after ``SessionMiddleware``, so the session it marks is saved by it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        session = getattr(request, "session", None)
        if session is None or session.session_key is None or session.modified:
            return response  # no session, or one being saved anyway
        refreshed = session.get(REFRESHED_KEY)  # loads it, if the view did not
        if session.session_key is None or session.is_empty():
            return response  # the cookie named no live session
        now = int(time.time())
        if not isinstance(refreshed, int) or now - refreshed >= SESSION_REFRESH_SECONDS:
            session[REFRESHED_KEY] = now
        return response
