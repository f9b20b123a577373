"""Hostile offline questionnaires: a workbook of a few kilobytes that declares a million rows,
or holds rows far below the answers, is refused at once with a message naming the limit,
instead of keeping a worker busy for minutes. The files are built here, once per module, from
the real template (``offline.build_xlsx``)."""

from __future__ import annotations

import io
import re
import time
import zipfile

import pytest
from django.core import mail
from django.test import Client
from django.utils import translation

from mamori.audit.models import AuditEvent
from mamori.supplychain import offline, tasks
from mamori.supplychain.models import ImportState, Invitation, InvitationStatus, Node, OfflineImport
from tests.conftest import client_for
from tests.supplychain import test_offline
from tests.supplychain.test_offline import assert_saved, download_book, fill, save

chain = test_offline.chain  # the bank's survey with a bound and an unbound invitation

EXCEL_ROWS = 1_048_576  # the most rows a sheet can have: what the hostile file declares


def template() -> bytes:
    supply = dict.fromkeys(offline.SUPPLY_KEYS, "")
    supply.update(kind="ict", name_ja="回線", country="JP", disclosure="full")
    return offline.build_xlsx({"supply": supply, "sites": [], "needs": []})


def sheet_part(package: zipfile.ZipFile, name: str) -> str:
    """The part name of sheet ``name`` (workbook.xml → its relationship → the part)."""
    workbook = package.read("xl/workbook.xml").decode()
    rid = re.search(rf'<sheet name="{name}"[^>]*r:id="(rId\d+)"', workbook).group(1)
    rels = package.read("xl/_rels/workbook.xml.rels").decode()
    target = re.search(rf'Target="([^"]+)" Id="{rid}"', rels).group(1)
    return target.lstrip("/")


def edited(
    data: bytes, sheet: str, *, dimension: str | None, rows: list[int], text: str = " "
) -> bytes:
    """The workbook with sheet ``sheet``'s declared dimension replaced (``None``: removed) and
    a row holding one cell of ``text`` at each index of ``rows`` (blank text: rows that look
    empty, as a spreadsheet program writes formatted rows)."""
    source = zipfile.ZipFile(io.BytesIO(data))
    part = sheet_part(source, sheet)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            content = source.read(item)
            if item.filename == part:
                xml = content.decode()
                replacement = f'<dimension ref="{dimension}"/>' if dimension else ""
                xml, count = re.subn(r'<dimension ref="[^"]*" ?/>', replacement, xml)
                assert count == 1
                extra = "".join(
                    f'<row r="{r}"><c r="A{r}" t="inlineStr"><is><t>{text}</t></is></c></row>'
                    for r in rows
                )
                xml = xml.replace("</sheetData>", extra + "</sheetData>")
                content = xml.encode()
            target.writestr(item.filename, content)
    return out.getvalue()


@pytest.fixture(scope="module")
def base() -> bytes:
    return template()


@pytest.fixture(scope="module")
def million_rows(base) -> bytes:
    """As in the report: a small file whose needs sheet declares 1,048,576 rows, with sparse
    blank rows down to the last one."""
    sparse = [*range(1000, EXCEL_ROWS, 4096), EXCEL_ROWS]
    return edited(base, "needs", dimension=f"A1:E{EXCEL_ROWS}", rows=sparse)


def refused(data: bytes) -> tuple[list[str], float]:
    """The errors of parsing ``data`` and the CPU seconds it took."""
    started = time.process_time()
    with pytest.raises(offline.OfflineFileError) as caught:
        offline.parse_upload("answers.xlsx", data)
    return caught.value.errors, time.process_time() - started


def test_the_hostile_file_is_small(million_rows):
    assert len(million_rows) < 40 * 1024


def test_a_million_declared_rows_are_refused_before_reading_them(million_rows):
    with translation.override("en"):
        errors, seconds = refused(million_rows)
    assert errors == [
        "The sheet 'needs' declares 1,048,576 rows; at most 1,001 rows are read (a header and "
        "500 rows of answers, with room for empty rows). Delete the rows below your answers, "
        "or use the CSV file."
    ]
    assert seconds < 1.0, seconds


def test_the_refusal_is_in_japanese_too(million_rows):
    with translation.override("ja"):
        errors, _seconds = refused(million_rows)
    assert "「needs」シート" in errors[0]
    assert "1,048,576" in errors[0]
    assert "1,001" in errors[0]


def test_rows_beyond_the_limit_are_refused_when_the_dimension_is_missing(base):
    """Without a declared dimension (it is optional) the rows read are counted: reading stops
    at the limit, whatever the file says."""
    data = edited(base, "sites", dimension=None, rows=list(range(1200, EXCEL_ROWS, 8192)))
    with translation.override("en"):
        errors, seconds = refused(data)
    assert errors == [
        "The sheet 'sites' has rows below row 1,001; at most 1,001 rows are read (a header and "
        "500 rows of answers, with room for empty rows). Delete the rows below your answers, "
        "or use the CSV file."
    ]
    assert seconds < 1.0, seconds


def test_a_dimension_that_understates_the_rows_does_not_help(base):
    data = edited(base, "supply", dimension="A1:D14", rows=[5000, 900_000])
    with translation.override("en"):
        errors, seconds = refused(data)
    assert errors[0].startswith("The sheet 'supply' has rows below row 1,001;")
    assert seconds < 1.0, seconds


def test_empty_formatted_rows_below_the_answers_are_tolerated(base):
    """Spreadsheet programs keep formatted empty rows (inserted rows, copied formats): within
    the allowance they are read and ignored."""
    data = edited(base, "needs", dimension="A1:E900", rows=[700, 899, 900])
    parsed = offline.parse_upload("answers.xlsx", data)
    assert parsed.needs == []


def test_answers_past_the_row_limit_are_still_named(base):
    data = edited(base, "needs", dimension="A1:E700", rows=[700], text="power")
    with translation.override("en"):
        errors, _seconds = refused(data)
    assert errors == ["needs!700: too many rows: at most 500 rows are read"]


def test_the_limit_is_a_setting(settings):
    settings.OFFLINE_MAX_ROWS = 20
    small = template()  # the template follows the setting: room for 20 rows
    assert offline.parse_upload("answers.xlsx", small).needs == []
    data = edited(small, "needs", dimension="A1:E50", rows=[50])
    with translation.override("en"):
        errors, _seconds = refused(data)
    assert errors[0].startswith("The sheet 'needs' declares 50 rows; at most 41 rows are read")


# --- Through the pages: the request stores, a worker parses ------------------------------------


def post_file(client, invitation, data: bytes, name="answers.xlsx"):
    file = io.BytesIO(data)
    file.name = name
    return client.post(f"/supply/responses/{invitation.pk}/offline/", {"file": file})


@pytest.mark.django_db
def test_the_upload_request_answers_at_once_and_the_worker_refuses_the_file(
    chain, million_rows, django_capture_on_commit_callbacks
):
    """An anonymous link holder uploads the hostile file: the request stores it and answers
    without parsing; the page shows it being processed; the import refuses it with the reason
    and nothing of the answers changes."""
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    assert client.get(f"/supply/i/{chain.unbound_token}/").status_code == 200
    with django_capture_on_commit_callbacks(execute=False) as queued:
        started = time.perf_counter()
        response = post_file(client, chain.unbound, million_rows)
        elapsed = time.perf_counter() - started
    assert response.status_code == 302, response.content[:2000]
    assert elapsed < 1.0, elapsed
    stored = OfflineImport.objects.get()
    assert (
        response["Location"] == f"/supply/responses/{chain.unbound.pk}/offline/uploads/{stored.pk}/"
    )
    assert (stored.state, stored.uploaded_by, stored.file_name) == ("pending", None, "answers.xlsx")
    assert bytes(stored.content) == million_rows
    assert len(queued) == 1  # the import, queued for after the commit

    page = client.get(response["Location"])
    assert page.status_code == 200
    text = page.content.decode()
    assert "The file is being processed" in text
    assert f'hx-get="{response["Location"]}"' in text
    assert 'hx-trigger="every 2s"' in text
    fragment = client.get(response["Location"], HTTP_HX_REQUEST="true")
    assert fragment.content.decode().lstrip().startswith('<div class="card" id="offline-import"')

    before = snapshot_of(chain.unbound)
    started = time.process_time()
    queued[0]()  # what the worker runs
    assert time.process_time() - started < 2.0
    stored.refresh_from_db()
    assert stored.state == ImportState.FAILED
    assert stored.errors[0].startswith("The sheet 'needs' declares 1,048,576 rows; at most 1,001")
    assert bytes(stored.content) == b""
    assert snapshot_of(chain.unbound) == before
    done = client.get(response["Location"], HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in done  # polling stops
    assert "Nothing was saved" in done
    assert "declares 1,048,576 rows" in done


@pytest.mark.django_db
def test_running_the_import_twice_imports_once(chain, base, django_capture_on_commit_callbacks):
    """A redelivered task (acks_late) finds the upload processed and changes nothing: one
    import, one audit entry, one invitation e-mail."""
    client = client_for(chain.user_a)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "en"
    data = save(fill(download_book(client, chain.invitation)))
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = post_file(client, chain.invitation, data)
    assert response.status_code == 302
    stored = OfflineImport.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.import_offline_answers(stored.pk) == ImportState.IMPORTED
    with django_capture_on_commit_callbacks(execute=True):
        queued[0]()
        assert tasks.import_offline_answers(stored.pk) == ImportState.IMPORTED
    assert_saved(chain.invitation)
    assert AuditEvent.objects.filter(action="supplychain.answers_imported").count() == 1
    assert [m.to for m in mail.outbox] == [["sales@polymer.example"]]
    stored.refresh_from_db()
    assert stored.summary == {"format": "xlsx", "sites": 3, "needs": 2, "invited": 1}
    page = client.get(response["Location"]).content.decode()
    assert "Your answers were imported (3 sites, 2 needs, 1 suppliers invited)." in page


@pytest.mark.django_db
def test_an_invitation_declined_before_the_import_gets_nothing_written(
    chain, django_capture_on_commit_callbacks
):
    client = client_for(chain.user_a)
    data = save(fill(download_book(client, chain.invitation)))
    with django_capture_on_commit_callbacks(execute=False) as queued:
        assert post_file(client, chain.invitation, data).status_code == 302
    before = snapshot_of(chain.invitation)
    Invitation.objects.filter(pk=chain.invitation.pk).update(status=InvitationStatus.DECLINED)
    with django_capture_on_commit_callbacks(execute=True):
        queued[0]()
    stored = OfflineImport.objects.get()
    assert stored.state == ImportState.FAILED
    # In the uploader's language (Japanese, the default), whatever the worker's.
    assert stored.errors == ["この招待は辞退されています。"]
    assert snapshot_of(chain.invitation)[1:] == before[1:]  # everything but the status
    assert mail.outbox == []


@pytest.mark.django_db
def test_only_those_who_may_answer_see_an_upload(world, chain, django_capture_on_commit_callbacks):
    owner = client_for(chain.user_a)
    data = save(fill(download_book(owner, chain.invitation)))
    with django_capture_on_commit_callbacks(execute=True):
        location = post_file(owner, chain.invitation, data)["Location"]
    assert owner.get(location).status_code == 200
    for user in (world.outsider, world.admin):  # the survey owner reads answers, not uploads
        assert client_for(user).get(location).status_code == 404
    assert Client().get(location).status_code == 404
    # The upload under another invitation's address is not found either.
    stored = OfflineImport.objects.get()
    other = f"/supply/responses/{chain.unbound.pk}/offline/uploads/{stored.pk}/"
    link_holder = Client()
    link_holder.get(f"/supply/i/{chain.unbound_token}/")
    assert link_holder.get(other).status_code == 404


def snapshot_of(invitation) -> tuple:
    invitation.refresh_from_db()
    node = Node.objects.get(pk=invitation.node_id)
    return (
        invitation.status,
        node.name_ja,
        node.country,
        sorted(node.sites.values_list("name", "country")),
        sorted(node.needs.values_list("name", flat=True)),
        Invitation.objects.filter(parent=invitation).count(),
    )
