"""Absolute links to this site, for what leaves it without a request at hand: PDFs, e-mail."""

from __future__ import annotations

from django.conf import settings


def absolute_url(path: str) -> str:
    """``path`` (as ``reverse`` gives it, starting with "/") on the site's public address,
    ``settings.SITE_URL`` (``MAMORI_SITE_URL``, by default loopback on the port served)."""
    return settings.SITE_URL.rstrip("/") + path
