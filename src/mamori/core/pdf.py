"""Render a template to PDF with WeasyPrint (Pango underneath; Japanese fonts from the system).

Called from background tasks only: PDFs are never rendered inside a request handler.
"""

from __future__ import annotations

from django.template.loader import render_to_string
from django.utils import translation


def render_pdf(template: str, context: dict, language: str = "ja") -> bytes:
    from weasyprint import HTML  # imported lazily: it loads Pango

    with translation.override(language):
        html = render_to_string(template, context)
    return HTML(string=html, base_url=None).write_pdf()
