from __future__ import annotations

from django import template
from django.utils.translation import gettext as _

register = template.Library()


@register.filter
def get_item(mapping, key):
    if not mapping:
        return None
    return mapping.get(key)


@register.filter
def tens(percent) -> int:
    """Round a percentage down to a multiple of ten, for the CSS progress classes."""
    try:
        return max(0, min(100, int(percent) // 10 * 10))
    except (TypeError, ValueError):
        return 0


@register.filter
def contains(values, value) -> bool:
    return isinstance(values, list | tuple | set) and value in values


@register.filter
def option_label(question, value) -> str:
    """A stored choice value shown with its label in the current language."""
    if value is None:
        return ""
    if question.kind == "yes_no":
        return {"yes": _("Yes"), "no": _("No"), "not_applicable": _("Not applicable")}.get(
            value, value
        )
    labels = {option["value"]: option["label"] for option in question.options}
    if isinstance(value, list):
        return ", ".join(labels.get(item, item) for item in value)
    return labels.get(value, value)


@register.filter
def cell(row, column_id):
    if not isinstance(row, dict):
        return ""
    value = row.get(column_id)
    return "" if value is None else value


@register.filter
def cell_label(row, column: dict) -> str:
    """A stored table cell as the reader sees it: a choice's label, Yes/No, or the value."""
    value = cell(row, column["id"])
    if value == "":
        return ""
    if column.get("kind") == "yes_no":
        return {"yes": _("Yes"), "no": _("No")}.get(value, value)
    if column.get("kind") == "choice":
        labels = {option["value"]: option["label"] for option in column.get("options", ())}
        return labels.get(value, value)
    return value


@register.simple_tag
def table_rows(value, extra=0):
    """Rows to show in an inventory editor: the saved ones, then blank rows to type into."""
    rows = [row for row in (value or []) if isinstance(row, dict)]
    return [*rows, *([{}] * (1 + int(extra or 0)))]
