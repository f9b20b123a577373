"""Checks on evidence uploads: size, an allow-list of types confirmed by their content, and a
safe display name. Nothing uploaded is ever executed or served inline."""

from __future__ import annotations

import hashlib
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath

from django.conf import settings
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

from mamori.core.errors import MamoriError

# extension -> (content type, check on the first bytes)
ALLOWED = {
    ".pdf": ("application/pdf", lambda head: head.startswith(b"%PDF-")),
    ".png": ("image/png", lambda head: head.startswith(b"\x89PNG\r\n\x1a\n")),
    ".jpg": ("image/jpeg", lambda head: head.startswith(b"\xff\xd8\xff")),
    ".jpeg": ("image/jpeg", lambda head: head.startswith(b"\xff\xd8\xff")),
    ".txt": ("text/plain", None),
    ".csv": ("text/csv", None),
    ".docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "zip"),
    ".xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "zip"),
}
OOXML_MARKERS = {".docx": "word/", ".xlsx": "xl/"}


@dataclass(frozen=True)
class CheckedUpload:
    name: str
    content_type: str
    size: int
    sha256: str


def safe_name(raw: str) -> str:
    """The last path component, without control characters, at most 150 characters."""
    name = unicodedata.normalize("NFC", raw or "")
    name = PureWindowsPath(PurePosixPath(name).name).name
    name = "".join(char for char in name if unicodedata.category(char)[0] != "C")
    name = name.strip().strip(".").strip()
    if not name:
        return "evidence"
    stem, dot, extension = name.rpartition(".")
    if dot and len(name) > 150:
        return stem[: 150 - len(extension) - 1] + "." + extension
    return name[:150]


def inspect_upload(upload) -> CheckedUpload:
    name = safe_name(getattr(upload, "name", ""))
    extension = ("." + name.rsplit(".", 1)[-1].lower()) if "." in name else ""
    allowed_list = ", ".join(sorted(ALLOWED))
    if extension not in ALLOWED:
        raise MamoriError(
            _("Files of this type are not accepted. Allowed: %(types)s.") % {"types": allowed_list},
            field="file",
            code="type_not_allowed",
        )
    limit = settings.EVIDENCE_MAX_BYTES
    if upload.size > limit:
        raise MamoriError(
            _("The file is larger than the limit of %(size)s.") % {"size": filesizeformat(limit)},
            field="file",
            code="too_large",
        )
    if upload.size == 0:
        raise MamoriError(_("The file is empty."), field="file", code="empty")
    digest = hashlib.sha256()
    upload.seek(0)
    head = b""
    for chunk in upload.chunks():
        if not head:
            head = chunk[:8192]
        digest.update(chunk)
    upload.seek(0)
    content_type, check = ALLOWED[extension]
    if check == "zip":
        ok = _is_ooxml(upload, OOXML_MARKERS[extension])
        upload.seek(0)
    elif check is None:
        ok = _is_text(head)
    else:
        ok = check(head)
    if not ok:
        raise MamoriError(
            _("The file's content does not match its %(ext)s extension.") % {"ext": extension},
            field="file",
            code="content_mismatch",
        )
    return CheckedUpload(
        name=name, content_type=content_type, size=upload.size, sha256=digest.hexdigest()
    )


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    for encoding in ("utf-8", "cp932"):
        try:
            head.decode(encoding)
            return True
        except UnicodeDecodeError:
            # The 8 KiB head may end inside a multi-byte character.
            try:
                head[:-4].decode(encoding)
                return True
            except UnicodeDecodeError:
                continue
    return False


def _is_ooxml(upload, marker: str) -> bool:
    try:
        with zipfile.ZipFile(upload) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return False
    return "[Content_Types].xml" in names and any(name.startswith(marker) for name in names)
