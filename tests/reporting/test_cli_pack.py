"""`mamori reporting pack ORGANISATION [--from D --to D] [--lang ja|en] --output FILE`: the pack
as PDF or XLSX by the output's suffix, stored like one made on the pages; bad input is one line
and exit status 2, with no file written."""

from __future__ import annotations

import datetime as dt
import io
from unittest import mock

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from openpyxl import load_workbook

from mamori.reporting.models import BoardPack
from tests.reporting import scene

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 11, 5, 1, tzinfo=dt.UTC)


@pytest.fixture
def bank(world):
    world.bank.corporate_number = "5010001008846"
    world.bank.save(update_fields=["corporate_number"])
    scene.store([world.bank], every=14)
    return world


def run(*arguments) -> str:
    out = io.StringIO()
    with mock.patch("django.utils.timezone.now", return_value=NOW):
        call_command("reporting", "pack", *arguments, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_the_last_quarters_pack_as_xlsx_by_corporate_number(bank, tmp_path):
    output = tmp_path / "pack.xlsx"
    printed = run("5010001008846", "--lang", "en", "--output", str(output))
    made = BoardPack.objects.get(organisation=bank.bank)
    assert (made.period_from, made.period_to) == (dt.date(2026, 7, 1), dt.date(2026, 9, 30))
    assert made.digest in printed
    book = load_workbook(io.BytesIO(output.read_bytes()))
    assert len(book.sheetnames) == 5
    # The same figures again: the same pack, not a new version.
    run(str(bank.bank.pk), "--output", str(tmp_path / "again.xlsx"))
    assert BoardPack.objects.count() == 1


def test_any_period_as_pdf(bank, tmp_path):
    output = tmp_path / "august.pdf"
    run(str(bank.bank.pk), "--from", "2026-08-01", "--to", "2026-08-31", "--output", str(output))
    assert output.read_bytes().startswith(b"%PDF-")
    assert BoardPack.objects.get().period_to == dt.date(2026, 8, 31)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--output", "pack.docx"], ".pdf か .xlsx"),
        (["--from", "2026-07-01", "--output", "pack.pdf"], "--from と --to は両方"),
        (["--from", "1 July", "--to", "2026-09-30", "--output", "pack.pdf"], "--from には"),
        (["--from", "2026-10-01", "--to", "2026-11-30", "--output", "pack.pdf"], "終わった日"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(bank, tmp_path, arguments, message):
    arguments = [str(tmp_path / a) if a.startswith("pack.") else a for a in arguments]
    with pytest.raises(CommandError, match=message) as stopped:
        run(str(bank.bank.pk), *arguments)
    assert stopped.value.returncode == 2
    assert list(tmp_path.iterdir()) == []
    assert not BoardPack.objects.exists()


def test_an_unknown_organisation(bank, tmp_path):
    with pytest.raises(CommandError, match="9999999") as stopped:
        run("9999999", "--output", str(tmp_path / "x.pdf"))
    assert stopped.value.returncode == 2


def test_an_unwritable_output_loses_nothing(bank, tmp_path):
    with pytest.raises(CommandError, match="書き込めません") as stopped:
        run(str(bank.bank.pk), "--output", str(tmp_path / "missing" / "pack.xlsx"))
    assert stopped.value.returncode == 2
