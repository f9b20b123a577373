"""Background work of reporting.

- ``sample_days`` (beat, hourly): the metric samples of yesterday (and of the finished days
  before it the beat missed), each stored and sealed once (``sampling.sample_finished_days``);
  a day already sealed costs one query.
"""

from __future__ import annotations

from mamori.celery import app


@app.task(name="mamori.reporting.tasks.sample_days")
def sample_days() -> list[str]:
    from mamori.reporting import sampling

    return [result.day.isoformat() for result in sampling.sample_finished_days()]
