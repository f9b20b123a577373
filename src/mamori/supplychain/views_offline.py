"""Offline answering pages: download the questionnaire pre-filled (xlsx or CSV) and upload it
back. The same people as on the answer page may use them; others get 404. The uploaded file is
parsed in memory and never stored."""

from __future__ import annotations

import io

from django import forms
from django.contrib import messages
from django.core.files.uploadedfile import InMemoryUploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from mamori.core.errors import MamoriError
from mamori.organisations.access import Access
from mamori.supplychain import offline, permissions
from mamori.supplychain.models import Invitation
from mamori.supplychain.offline_import import import_answers


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
        if self.seen <= offline.MAX_UPLOAD_BYTES:
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
                if upload.size > offline.MAX_UPLOAD_BYTES:
                    raise offline.OfflineFileError(
                        [
                            _("The file is larger than %(limit)s MiB.")
                            % {"limit": offline.MAX_UPLOAD_BYTES // (1024 * 1024)}
                        ]
                    )
                data = upload.read(offline.MAX_UPLOAD_BYTES + 1)
                parsed = offline.parse_upload(upload.name, data)
                summary = import_answers(
                    request.user if request.user.is_authenticated else None,
                    Access.for_request(request),
                    invitation,
                    parsed,
                    site_url=request.build_absolute_uri("/"),
                    link_key=permissions.answer_key(request.session),
                )
            except offline.OfflineFileError as exc:
                errors = exc.errors
                status = 422
            except MamoriError as exc:
                errors = [str(exc.message)]
                status = 409 if exc.status == 409 else 422
            else:
                messages.success(
                    request,
                    _(
                        "Your answers were imported (%(sites)s sites, %(needs)s needs, %(invited)s "
                        "suppliers invited)."
                    )
                    % summary,
                )
                return redirect("supplychain:response", pk=invitation.pk)
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
            "max_mib": offline.MAX_UPLOAD_BYTES // (1024 * 1024),
            "max_rows": offline.MAX_ROWS,
        },
        status=status,
    )


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
