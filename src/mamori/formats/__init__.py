"""Mamori's date and time formats, one of each per language (settings.FORMAT_MODULE_PATH).

Every ``{{ date }}``, ``|date`` without an argument and ``formats.date_format(value)`` uses them,
so a page never mixes ISO dates with written ones, and no format ends in a full stop that a
sentence would double ("8:53 p.m.."). Templates ask for "DATE_FORMAT" or "DATETIME_FORMAT",
never for a pattern of their own.
"""
