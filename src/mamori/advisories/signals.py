"""Signals other apps connect to.

``advisories_changed`` is sent once per import run, after the data it describes has been
committed, whenever advisories were added, changed or withdrawn, or KEV entries that such
advisories name were added or changed. ``keys`` is the set of (ecosystem family, package name)
pairs whose matches may differ now, e.g. ``{("Debian", "openssl"), ("PyPI", "django")}``: a
receiver re-matches only the hosts that have one of those packages.
"""

from django.dispatch import Signal

advisories_changed = Signal()
