"""The API's pages: ``?limit=&offset=`` as DRF counts them, with a ceiling on the limit.

Without one, any ``limit`` was passed to the database: a client asking for ``limit=10**26`` got
a server error (SQLite and PostgreSQL refuse a LIMIT that large), and a large one that fitted
read a whole table into one answer. A limit over the ceiling is served as the ceiling; the
answer's ``next`` link carries on from there.
"""

from __future__ import annotations

from rest_framework import pagination

MAX_LIMIT = 1000


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    max_limit = MAX_LIMIT
