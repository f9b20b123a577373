"""The evidence file a supplier attaches to its answers, through the answer page as a link
holder without an account uses it: only the allow-listed types of assessment evidence (an SVG
with a script is refused), a re-answer's file replaces the old one on disk once the answers are
committed, and a write that fails (a full disk) leaves neither a partial file nor half-saved
answers behind."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from mamori.supplychain.models import InvitationStatus, Node
from tests.supplychain import test_offline
from tests.supplychain.test_survey_cascade import answer_post

chain = test_offline.chain  # the bank's survey; its unbound link is for a supplier without account

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(document.cookie)">'
    b"<script>fetch('/accounts/tokens/')</script></svg>"
)


@pytest.fixture
def files_root(settings, tmp_path) -> Path:
    """A files folder of the test's own, so "no stray file" is an exact check."""
    root = tmp_path / "files"
    root.mkdir()
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "mamori.core.storage.PrivateFileStorage",
            "OPTIONS": {"location": root, "base_url": None},
        },
    }
    return root


def stored(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes() for path in root.rglob("*") if path.is_file()
    }


@pytest.fixture
def link_holder(chain) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    assert client.get(f"/supply/i/{chain.unbound_token}/").status_code == 200
    return client


def answer(client, invitation, file: SimpleUploadedFile | None, name="Carrier network"):
    data = answer_post(name)
    data["certification_declared"] = "on"
    if file is not None:
        data["certification_file"] = file
    return client.post(f"/supply/responses/{invitation.pk}/answer/", data)


def node_of(invitation) -> Node:
    return Node.objects.get(pk=invitation.node_id)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("evidence.svg", SVG, "Files of this type are not accepted."),
        ("evidence.html", b"<html><script>alert(1)</script></html>", "not accepted"),
        ("evidence.pdf", SVG, "does not match its .pdf extension"),
        ("evidence.png", PDF, "does not match its .png extension"),
        ("evidence.pdf", b"", "The submitted file is empty."),
    ],
    ids=["svg-with-script", "html", "svg-named-pdf", "pdf-named-png", "empty"],
)
def test_only_the_evidence_allow_list_is_stored(
    chain, link_holder, files_root, name, content, reason
):
    response = answer(link_holder, chain.unbound, SimpleUploadedFile(name, content))
    assert response.status_code == 422
    errors = response.context["form"].errors
    assert any(reason in message for message in errors["certification_file"]), errors
    assert stored(files_root) == {}
    chain.unbound.refresh_from_db()
    assert chain.unbound.status == InvitationStatus.INVITED  # nothing of the answers saved


@pytest.mark.django_db
def test_a_file_over_the_limit_is_refused(chain, link_holder, files_root, settings):
    settings.EVIDENCE_MAX_BYTES = 1000
    response = answer(link_holder, chain.unbound, SimpleUploadedFile("e.pdf", PDF + b"0" * 1000))
    assert response.status_code == 422
    assert "larger than the limit" in str(response.context["form"].errors)
    assert stored(files_root) == {}


@pytest.mark.django_db
def test_a_re_answer_replaces_the_file_once_committed(
    chain, link_holder, files_root, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = answer(link_holder, chain.unbound, SimpleUploadedFile("iso.pdf", PDF))
    assert first.status_code == 302, first.content[:2000]
    old_name = node_of(chain.unbound).certification_file.name
    assert stored(files_root) == {old_name: PDF}

    second_pdf = PDF + b"% renewed\n"
    with django_capture_on_commit_callbacks(execute=False) as pending:
        second = answer(link_holder, chain.unbound, SimpleUploadedFile("iso.pdf", second_pdf))
        assert second.status_code == 302
        new_name = node_of(chain.unbound).certification_file.name
        assert new_name != old_name
        # Until the answers are committed the old file stays: a rollback keeps it valid.
        assert stored(files_root) == {old_name: PDF, new_name: second_pdf}
    for callback in pending:
        callback()
    assert stored(files_root) == {new_name: second_pdf}

    # A refused re-answer leaves the current file as it is.
    with django_capture_on_commit_callbacks(execute=True):
        refused = answer(link_holder, chain.unbound, SimpleUploadedFile("x.svg", SVG))
    assert refused.status_code == 422
    assert stored(files_root) == {new_name: second_pdf}
    assert node_of(chain.unbound).certification_file.name == new_name


@pytest.mark.django_db
def test_a_failed_write_saves_nothing(
    chain, link_holder, files_root, django_capture_on_commit_callbacks
):
    """The evidence folder cannot be written (here a file stands where the folder should be,
    a real error from the kernel): the visitor is told, the answers are not saved and the
    previous file stays."""
    with django_capture_on_commit_callbacks(execute=True):
        assert (
            answer(link_holder, chain.unbound, SimpleUploadedFile("a.pdf", PDF)).status_code == 302
        )
    before = stored(files_root)
    (old_name,) = before
    folder = files_root / "supplychain" / "evidence"
    moved = files_root / "moved"
    folder.rename(moved)
    folder.write_bytes(b"not a folder")
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = answer(
                link_holder, chain.unbound, SimpleUploadedFile("b.pdf", PDF), name="Renamed"
            )
    finally:
        folder.unlink()
        moved.rename(folder)
    assert response.status_code == 503
    assert "could not be stored, so nothing was saved" in str(response.context["form"].errors)
    node = node_of(chain.unbound)
    assert (node.name_ja, node.certification_file.name) == ("Carrier network", old_name)
    assert stored(files_root) == before


# --- A write that fails half-way ---------------------------------------------------------------

WRITE_UNDER_A_FILE_SIZE_LIMIT = textwrap.dedent(
    """
    import errno, json, os, resource, signal, sys
    import django
    django.setup()
    from django.core.files.base import ContentFile
    from django.core.files.storage import FileSystemStorage
    from mamori.core.storage import PrivateFileStorage

    root, limit = sys.argv[1], int(sys.argv[2])
    # The kernel refuses to grow any file past the limit (EFBIG), as a full disk refuses
    # (ENOSPC) half-way through a write; ignoring SIGXFSZ turns the signal into the error.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    outcome = {}
    for label, storage in (
        ("django", FileSystemStorage(location=os.path.join(root, "django"))),
        ("mamori", PrivateFileStorage(location=os.path.join(root, "mamori"))),
    ):
        small = storage.save("supplychain/evidence/small.pdf", ContentFile(b"%PDF-" + b"1" * 100))
        try:
            storage.save("supplychain/evidence/big.pdf", ContentFile(b"%PDF-" + b"0" * 4 * limit))
            outcome[label] = {"error": None}
        except OSError as exc:
            outcome[label] = {"error": errno.errorcode.get(exc.errno)}
        outcome[label]["small"] = small
    print(json.dumps(outcome))
    """
)


def test_a_write_that_fails_half_way_leaves_no_partial_file(tmp_path):
    limit = 64 * 1024
    result = subprocess.run(
        [sys.executable, "-c", WRITE_UNDER_A_FILE_SIZE_LIMIT, str(tmp_path), str(limit)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "MAMORI_VAR_DIR": str(tmp_path / "var")},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    import json

    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["django"]["error"] == outcome["mamori"]["error"] == "EFBIG"

    def files(label: str) -> dict[str, int]:
        root = tmp_path / label
        return {str(p.relative_to(root)): p.stat().st_size for p in root.rglob("*") if p.is_file()}

    # Django's storage leaves the partial file under its real name, as the full disk did...
    assert files("django") == {
        "supplychain/evidence/small.pdf": 105,
        "supplychain/evidence/big.pdf": limit,
    }
    # ...ours leaves nothing of the failed write, and the earlier file is whole.
    assert files("mamori") == {"supplychain/evidence/small.pdf": 105}
    assert outcome["mamori"]["small"] == "supplychain/evidence/small.pdf"
