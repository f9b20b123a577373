"""Absolute links to this site, for what leaves it without a request: PDFs, e-mail.

The public address is the ``MAMORI_SITE_URL`` setting (the supplier invitations read the same
one); without it, the address ``make run`` serves on loopback.
"""

from __future__ import annotations

from django.conf import settings

LOCAL_SITE_URL = "http://127.0.0.1:8000"


def site_url() -> str:
    """The site's public address, without a trailing slash."""
    return (getattr(settings, "MAMORI_SITE_URL", "") or LOCAL_SITE_URL).rstrip("/")


def absolute_url(path: str) -> str:
    """``path`` (as ``reverse`` gives it, starting with "/") on the site's public address."""
    return site_url() + path
