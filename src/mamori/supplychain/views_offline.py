"""Offline answering pages: download the questionnaire pre-filled (xlsx or CSV) and upload it
back. The same people as on the answer page may use them; others get 404. The upload request
stores the file and answers at once; a worker parses and imports it, and the upload's page shows
its state (polled with htmx) and then the outcome. The file is dropped once processed."""

from __future__ import annotations

import io

from django import forms
from django.core.files.uploadedfile import InMemoryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import get_language, gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from mamori.core.bodylimit import body_limit, upload_limit
from mamori.organisations.access import Access
from mamori.supplychain import offline, offline_uploads, permissions
from mamori.supplychain.models import Invitation, OfflineImport


class UploadForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("Filled questionnaire (.xlsx or .csv)"),
        widget=forms.ClearableFileInput(attrs={"accept": ".xlsx,.csv"}),
    )


class CappedMemoryUpload(FileUploadHandler):
    """Keeps an uploaded file in memory up to the limit and only counts the rest: an oversized
    file is refused without being written anywhere, not even to a temporary file."""

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.buffer = io.BytesIO()
        self.seen = 0

    def receive_data_chunk(self, raw_data, start):
        self.seen += len(raw_data)
        if self.seen <= offline.max_upload_bytes():
            self.buffer.write(raw_data)
        return None

    def file_complete(self, file_size):
        self.buffer.seek(0)
        return InMemoryUploadedFile(
            file=self.buffer,
            field_name=self.field_name,
            name=self.file_name,
            content_type=self.content_type,
            size=self.seen,  # the real size, so the view refuses a truncated file
            charset=self.charset,
            content_type_extra=self.content_type_extra,
        )


def _editable(request, pk: int) -> Invitation:
    """The invitation, if this visitor may answer it (as on the answer page); 404 otherwise."""
    invitation = get_object_or_404(
        Invitation.objects.select_related(
            "campaign__owner", "node__entity__ultimate_parent", "organisation", "parent"
        ),
        pk=pk,
    )
    access = Access.for_request(request)
    if not permissions.can_edit_response(access, request.session, invitation):
        raise Http404
    return invitation


@body_limit(upload_limit(offline.max_upload_bytes))
@csrf_exempt  # the CSRF check runs in _offline_page, after the upload handler is set
@never_cache
def offline_page(request, pk: int):
    request.upload_handlers = [CappedMemoryUpload(request)]
    return _offline_page(request, pk)


@csrf_protect
def _offline_page(request, pk: int):
    invitation = _editable(request, pk)
    errors: list[str] = []
    status = 200
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST":
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                if upload.size > offline.max_upload_bytes():
                    raise offline.OfflineFileError([offline.too_large_message()])
                stored = offline_uploads.receive_upload(
                    request.user if request.user.is_authenticated else None,
                    invitation,
                    file_name=upload.name,
                    data=upload.read(offline.max_upload_bytes() + 1),
                    language=get_language() or "ja",
                    site_url=request.build_absolute_uri("/"),
                    link_key=permissions.answer_key(request.session),
                )
            except offline.OfflineFileError as exc:
                errors = exc.errors
                status = 422
            else:
                return redirect("supplychain:offline_import", pk=invitation.pk, upload=stored.pk)
            finally:
                upload.close()
        else:
            status = 422
    return render(
        request,
        "supplychain/offline.html",
        {
            "invitation": invitation,
            "form": form,
            "errors": errors,
            "max_mib": offline.max_upload_bytes() // (1024 * 1024),
            "max_rows": offline.max_rows(),
        },
        status=status,
    )


@never_cache
def offline_import(request, pk: int, upload: int):
    """An upload's state: being processed (the page polls this fragment), imported, or refused
    with the errors by sheet and row. Only those who may answer the invitation see it."""
    invitation = _editable(request, pk)
    stored = get_object_or_404(
        OfflineImport.objects.defer("content"), pk=upload, invitation=invitation
    )
    template = (
        "supplychain/_offline_import.html"
        if getattr(request, "htmx", False)
        else "supplychain/offline_import.html"
    )
    return render(request, template, {"invitation": invitation, "upload": stored})


@never_cache
def download_xlsx(request, pk: int):
    invitation = _editable(request, pk)
    response = HttpResponse(
        offline.build_xlsx(offline.snapshot(invitation)), content_type=offline.XLSX_MIME
    )
    response["Content-Disposition"] = f'attachment; filename="questionnaire-{invitation.pk}.xlsx"'
    return response


@never_cache
def download_csv(request, pk: int):
    invitation = _editable(request, pk)
    response = HttpResponse(
        offline.build_csv(offline.snapshot(invitation)), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="questionnaire-{invitation.pk}.csv"'
    return response
