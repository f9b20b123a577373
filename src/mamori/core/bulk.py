"""Writing many rows at once, fast on PostgreSQL and plain Django elsewhere.

Django's ``bulk_create`` and ``bulk_update`` are correct everywhere but slow for thousands of
rows on PostgreSQL: the multi-row INSERT has psycopg quote every JSON value in Python, and
``bulk_update`` writes one ``CASE WHEN`` per row and field. ``COPY`` and ``UPDATE … FROM
unnest(…)`` do the same work in a fraction of the time (docs/rematch.md measures both).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import orjson
from django.db import connection
from django.db.models import JSONField, Model
from django.db.models.fields import AutoFieldMixin

UPDATE_CHUNK = 5000


def insert_rows(model: type[Model], objects: list[Model], *, with_ids: bool = False) -> None:
    """Insert new rows: ``bulk_create``, or ``COPY`` on PostgreSQL. A COPY sets no primary keys
    on the objects unless ``with_ids``: then they are taken from the table's sequence first, in
    one query (reading them back afterwards would cost a look-up per row)."""
    if not objects:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objects, batch_size=2000)
        return
    meta = model._meta
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    if with_ids and isinstance(meta.pk, AutoFieldMixin):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                [meta.db_table, meta.pk.column, len(objects)],
            )
            for item, (pk,) in zip(objects, cursor.fetchall(), strict=True):
                item.pk = pk
                item._state.adding = False
                item._state.db = connection.alias
        fields.insert(0, meta.pk)
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    statement = f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN"
    json_fields = {field for field in fields if isinstance(field, JSONField)}
    with (
        connection.cursor() as cursor,
        connection.wrap_database_errors,  # psycopg's errors as Django's (IntegrityError, ...)
        cursor.cursor.copy(statement) as copy,
    ):
        for item in objects:
            row = []
            for field in fields:
                value = field.pre_save(item, add=True)  # auto_now(_add) stamps, FK ids
                if field in json_fields and value is not None:
                    value = _json_text(value)
                row.append(value)
            copy.write_row(row)


def _json_text(value) -> str:
    """JSON text for a JSON column: orjson (several times faster), or the standard library for
    what orjson refuses (integers beyond 64 bits, keys that are not strings)."""
    try:
        return orjson.dumps(value).decode("utf-8")
    except TypeError:
        return json.dumps(value, ensure_ascii=False)


def update_rows(model: type[Model], field_names: Sequence[str], rows: Sequence[Sequence]) -> None:
    """Set ``field_names`` of existing rows: each row is ``(pk, value, value, ...)`` in the
    order of ``field_names``. One ``UPDATE … FROM unnest(…)`` per chunk on PostgreSQL."""
    if not rows:
        return
    meta = model._meta
    fields = [meta.get_field(name) for name in field_names]
    if connection.vendor != "postgresql":
        objects = []
        for row in rows:
            item = model(pk=row[0])
            for field, value in zip(fields, row[1:], strict=True):
                setattr(item, field.attname, value)
            objects.append(item)
        model.objects.bulk_update(objects, [field.name for field in fields], batch_size=500)
        return
    # One array parameter per column and ``unnest``: a handful of parameters however many
    # rows (psycopg parses a statement with tens of thousands of placeholders slowly).
    quote = connection.ops.quote_name
    types = [meta.pk.db_type(connection)] + [field.db_type(connection) for field in fields]
    names = ["pk"] + [f"v{position}" for position in range(len(fields))]
    assignments = ", ".join(
        f"{quote(field.column)} = v.{name}" for field, name in zip(fields, names[1:], strict=True)
    )
    arrays = ", ".join(f"%s::{kind}[]" for kind in types)
    statement = (
        f"UPDATE {quote(meta.db_table)} AS t SET {assignments} "  # noqa: S608 - names from the model
        f"FROM unnest({arrays}) AS v({', '.join(names)}) "
        f"WHERE t.{quote(meta.pk.column)} = v.pk"
    )
    json_positions = {
        position + 1 for position, field in enumerate(fields) if isinstance(field, JSONField)
    }
    with connection.cursor() as cursor:
        for start in range(0, len(rows), UPDATE_CHUNK):
            chunk = rows[start : start + UPDATE_CHUNK]
            columns = [list(column) for column in zip(*chunk, strict=True)]
            for position in json_positions:
                columns[position] = [
                    None if value is None else json.dumps(value, ensure_ascii=False)
                    for value in columns[position]
                ]
            cursor.execute(statement, columns)
