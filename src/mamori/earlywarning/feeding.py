"""Reading a feed from where it lives — a file, every report file of a folder, an http(s) URL —
for the command line and for the scheduled task (one per feed, ``tasks.read_feed``).

By the feed's kind: a network report (``ingest``) or an EPSS file (``scores``) per file of the
location; the KEV catalogue or OSV advisories (``software``) through the advisory importer, a
file, an OSV folder or zip, or a URL of one file.
"""

from __future__ import annotations

import os

from mamori.core.backup import Progress
from mamori.earlywarning import ingest, scores, software
from mamori.earlywarning.feeds import sources
from mamori.earlywarning.models import Feed, FeedKind, FeedRun


def import_location(name: str, location: str, *, progress: Progress | None = None) -> list[FeedRun]:
    """Import every report ``location`` holds into the feed ``name``. ``FeedError`` (or its
    ``SourceError``) when the feed is unknown or the location cannot be read at all."""
    progress = progress or Progress()
    feed = _feed(name)
    if feed.kind in (FeedKind.KEV, FeedKind.OSV):
        return [software.import_advisory_feed(feed, location, progress=progress)]
    read_one = scores.import_epss if feed.kind == FeedKind.EPSS else ingest.import_report
    runs = []
    for source_name, opener in sources.iter_sources(location):
        progress.step(os.path.basename(source_name) or source_name)
        if not sources.is_url(location):
            progress.bytes_total(os.path.getsize(source_name))
        with opener() as stream:
            try:
                runs.append(read_one(feed, stream, source=source_name, on_read=progress.bytes_done))
            except ingest.FeedError:
                run = feed.runs.first()
                if run is None or run.source != source_name[:500] or not run.rows:
                    raise  # refused whole: nothing in it could be used
                runs.append(run)  # cut off mid-way: what was read before is imported
    return runs


def _feed(name: str) -> Feed:
    """The feed of this name: an existing one, else ``kev``, ``osv`` or ``epss`` created with
    their defaults, else the network report type of that name."""
    name = name.strip().lower()
    existing = Feed.objects.filter(name=name).first()
    if existing is not None:
        return existing
    if name in software.FEED_DEFAULTS:
        return software.feed_for(name)
    return ingest.feed_for(name)
