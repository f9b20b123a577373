"""Import and export of an organisation's supply-chain graph in the exchange format
(``mamori.supplygraph/1``, DESIGN.md) from the web: for the members who manage its services.
The uploaded file is parsed in memory, never stored; errors name the offending ids."""

from __future__ import annotations

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _

from mamori.core.bodylimit import body_limit, upload_limit
from mamori.organisations.access import Access
from mamori.organisations.models import Organisation
from mamori.supplychain import graph, permissions, services

MAX_UPLOAD_BYTES = 8 * 1024 * 1024


def _organisation(request, pk: int) -> tuple[Access, Organisation]:
    access = Access.for_request(request)
    organisation = get_object_or_404(Organisation, pk=pk)
    if not permissions.can_manage_services(access, organisation):
        raise Http404
    return access, organisation


@body_limit(upload_limit(lambda: MAX_UPLOAD_BYTES))
@login_required
def exchange(request, pk: int):
    _access, organisation = _organisation(request, pk)
    errors: list[str] = []
    status = 200
    if request.method == "POST":
        upload = request.FILES.get("graph")
        if upload is None:
            errors = [_("Choose a mamori.supplygraph/1 JSON file to import.")]
        elif upload.size > MAX_UPLOAD_BYTES:
            errors = [
                _("The file is larger than %(limit)s MiB; split the graph.")
                % {"limit": MAX_UPLOAD_BYTES // (1024 * 1024)}
            ]
        else:
            raw = upload.read(MAX_UPLOAD_BYTES + 1)
            try:
                graph.loads(raw, max_bytes=MAX_UPLOAD_BYTES)  # every problem, by path and id
            except graph.GraphError as exc:
                errors = list(exc.errors)
            else:
                document = json.loads(raw)
                try:
                    created = services.import_graph(organisation, document, actor=request.user)
                except services.GraphImportError as exc:
                    errors = list(exc.errors)
                else:
                    messages.success(
                        request,
                        _("Imported %(nodes)s nodes and %(requirements)s needs.")
                        % {
                            "nodes": created.get("nodes", 0),
                            "requirements": created.get("requirements", 0),
                        },
                    )
                    return redirect("supplychain:exchange", pk=organisation.pk)
        status = 400
    return render(
        request,
        "supplychain/exchange.html",
        {"organisation": organisation, "errors": errors[:50], "more": max(0, len(errors) - 50)},
        status=status,
    )


@login_required
def export(request, pk: int):
    _access, organisation = _organisation(request, pk)
    document = services.export_graph(organisation)
    response = HttpResponse(
        json.dumps(document, ensure_ascii=False, indent=2),
        content_type="application/json; charset=utf-8",
    )
    response["Content-Disposition"] = f'attachment; filename="supplygraph-{organisation.pk}.json"'
    return response
