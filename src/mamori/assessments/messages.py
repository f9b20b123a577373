"""Translated messages for answer validation errors raised by the plain catalogue module."""

from __future__ import annotations

from django.utils.translation import gettext as _

from mamori.catalogue.spec import AnswerError


def describe(error: AnswerError, columns: list[dict] | None = None) -> str:
    """The reason in the user's language. ``columns`` (a question's columns, labels in the
    current language) name a table's column as the page shows it, not by the catalogue's key;
    a column the catalogue does not know is named as it was sent."""
    params = dict(error.params)
    labels = {column["id"]: column["label"] for column in columns or ()}
    if error.code != "unknown_column" and params.get("column") in labels:
        params["column"] = labels[params["column"]]
    messages = {
        "not_a_choice": _("Choose one of: %(allowed)s."),
        "unknown_choice": _("'%(value)s' is not one of the choices (%(allowed)s)."),
        "not_a_list": _("Send a list of choices."),
        "duplicate_choice": _("Each choice can be picked only once."),
        "not_a_number": _("Enter a number."),
        "number_too_large": _("That number is too large."),
        "below_minimum": _("Enter %(minimum)s or more."),
        "above_maximum": _("Enter %(maximum)s or less."),
        "not_text": _("Enter text."),
        "control_characters": _("The text contains control characters; remove them."),
        "too_long": _("Keep it under %(limit)s characters."),
        "not_a_table": _("Send the table as a list of rows."),
        "too_many_rows": _("A table can have at most %(limit)s rows."),
        "row_not_an_object": _("Row %(row)s is not a set of columns."),
        "unknown_column": _("Row %(row)s has an unknown column '%(column)s'."),
        "cell_required": _("Row %(row)s: fill in '%(column)s'."),
    }
    problem = messages.get(error.code, _("This answer is not valid.")) % params
    if (
        "row" in params
        and "column" in params
        and error.code not in ("unknown_column", "cell_required")
    ):
        # A cell of an inventory table: say where the problem is.
        return _("Row %(row)s, column '%(column)s': %(problem)s") % {
            "row": params["row"],
            "column": params["column"],
            "problem": problem,
        }
    return problem
