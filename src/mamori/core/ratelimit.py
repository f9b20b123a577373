"""Rate limits counted once for the whole site, whatever the number of web processes.

DRF's own throttle keeps its history in the process's default cache with a read and a write per
request: with a cache per gunicorn worker, three workers allowed three times the rate, and with a
shared cache two simultaneous requests could both read the same count. Here each client's window
starts with its first request and lasts the rate's period, and the count is kept where every
process sees it, updated in one indivisible step:

- Redis (``MAMORI_CACHE_URL``, or a Redis broker): ``SET NX EX`` + ``INCR`` + ``TTL`` in one
  ``MULTI`` transaction;
- the database cache of the embedded default: read and write in one transaction, which takes
  SQLite's write lock at its start (``transaction_mode`` IMMEDIATE) or, on PostgreSQL, an
  advisory lock on the key.

If the store cannot be reached the request is let through (and logged): a cache outage must not
take the public API down with it.
"""

from __future__ import annotations

import hashlib
import logging
import time
from functools import lru_cache

import redis
from django.conf import settings
from django.core.cache import caches
from django.db import DatabaseError, connection, transaction
from rest_framework.throttling import ScopedRateThrottle

from mamori.core.client_address import client_address

logger = logging.getLogger(__name__)


@lru_cache(maxsize=4)
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)


def _hit_redis(url: str, key: str, period: int) -> tuple[int, float]:
    pipe = _redis(url).pipeline(transaction=True)
    pipe.set(key, 0, ex=period, nx=True)
    pipe.incr(key)
    pipe.ttl(key)
    _created, count, remaining = pipe.execute()
    return int(count), float(max(remaining, 0))


def _advisory_lock_id(key: str) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)


def _hit_cache(key: str, period: int) -> tuple[int, float]:
    cache = caches["default"]
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_advisory_lock_id(key)])
        now = time.time()
        count, ends = cache.get(key) or (0, 0.0)
        if ends <= now:
            count, ends = 0, now + period
        count += 1
        cache.set(key, (count, ends), timeout=max(1, round(ends - now)))
    return count, ends - now


def hit(key: str, period: int) -> tuple[int, float]:
    """Count one request in ``key``'s current window (``period`` seconds from its first
    request); return the requests counted in it so far and the seconds until it ends."""
    if settings.CACHE_IS_REDIS:
        return _hit_redis(settings.CACHE_URL, f"mamori:ratelimit:{key}", period)
    return _hit_cache(f"ratelimit:{key}", period)


class SiteWideRateThrottle(ScopedRateThrottle):
    """``throttle_scope`` rates (``DEFAULT_THROTTLE_RATES``) per client address, counted for the
    whole site; the client is the address behind a trusted proxy (core/client_address.py)."""

    def get_ident(self, request) -> str:
        return client_address(request)

    def allow_request(self, request, view) -> bool:
        self.scope = getattr(view, self.scope_attr, None)
        if not self.scope:
            return True
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        try:
            count, self.remaining = hit(key, self.duration)
        except (redis.RedisError, DatabaseError, OSError):
            logger.warning("rate limit store unavailable; request let through", exc_info=True)
            return True
        return count <= self.num_requests

    def wait(self) -> float:
        return self.remaining
