"""The database a PostgreSQL benchmark measures on, shared by the scripts that drop and recreate
their own (``scheme_core``, ``earlywarning_webhooks``, ``fleet_rematch``, ``reporting``): it must be PostgreSQL
and its name must say ``bench``, since it is dropped."""

from __future__ import annotations

import sys


def check_database(example: str) -> dict:
    """The configured database, or exit with one line (``example``: the name to suggest)."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.postgresql":
        sys.exit(f"The benchmark needs PostgreSQL: DATABASE_URL=postgres://.../{example}")
    if "bench" not in database["NAME"]:
        sys.exit(
            f"Refusing to use database {database['NAME']!r}: the benchmark drops and recreates "
            "its database, so the name must contain 'bench'."
        )
    return database


def recreate_database(database: dict) -> None:
    import psycopg
    from psycopg import sql

    params = {
        "dbname": "postgres",
        "user": database.get("USER") or None,
        "password": database.get("PASSWORD") or None,
        "host": database.get("HOST") or None,
        "port": database.get("PORT") or None,
    }
    with psycopg.connect(**{k: v for k, v in params.items() if v}, autocommit=True) as conn:
        name = sql.Identifier(database["NAME"])
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))
