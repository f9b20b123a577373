"""The board pack rendered: the PDF in Japanese and English (every page drawn, the text layer in
the language with the Japanese font embedded and no missing glyph, the decisions and the digest
on the pages) and the workbook (its sheets and figures, byte-identical from one render to the
next). No database: the content is composed from a constructed year of daily samples with a
story in it — a known exploited vulnerability open 20 days, security update management falling
below 80 %, a certificate expiring in 60 days and a single supplier.

Needs poppler-utils (pdftoppm, pdftotext, pdffonts), which `make test` installs.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import subprocess
import unicodedata
import zipfile
from pathlib import Path

import pytest
from django.utils import translation
from fontTools.ttLib import TTFont
from openpyxl import load_workbook
from PIL import Image

from mamori.core.controls import LABELS
from mamori.reporting import mapping, metrics, pack, render
from tests.conftest import require_tool

PERIOD = pack.quarter_of(dt.date(2026, 9, 30))  # 2026-07-01 to 2026-09-30
FIRST_DAY = dt.date(2025, 7, 1)  # the four trend quarters and the one before them
CERTIFICATE_EXPIRES = dt.date(2026, 11, 29)  # 60 days after the period's end
KEV_LISTED = dt.date(2026, 9, 10)  # 20 days before the period's end
GAP = (dt.date(2026, 2, 10), dt.date(2026, 2, 16))  # a week without samples (agent outage)
ORGANISATION = {"id": 7, "name_ja": "まもり信用金庫", "name_en": "Mamori Shinkin <Bank> & Co"}
IPAEX = Path("/usr/share/fonts/opentype/ipaexfont-gothic/ipaexg.ttf")
POPPLER = ("pdftoppm", "pdftotext", "pdffonts")


@pytest.fixture(scope="module")
def poppler() -> None:
    """poppler-utils is installed by `make test` (TEST_PACKAGES): missing, it is a failure."""
    for tool in POPPLER:
        require_tool(tool)


needs_poppler = pytest.mark.usefixtures("poppler")


def update_share(day: dt.date) -> float:
    """Security update management: 95 % (green) until the period, then sliding to 75 % (red)."""
    if day < PERIOD.first:
        return 0.95
    return round(max(0.75, 0.95 - 0.25 * (day - PERIOD.first).days / 90), 4)


def values_on(day: dt.date) -> dict[str, object]:
    kev = day >= KEV_LISTED
    expires = CERTIFICATE_EXPIRES if day > dt.date(2025, 11, 29) else dt.date(2025, 11, 29)
    late = day >= dt.date(2026, 9, 20)
    return {
        "certificate_level": "CE",
        "certificate_days_to_expiry": (expires - day).days,
        "hosts_in_scope": 40,
        "hosts_checked_in": 39,
        "control_passing.firewalls": 1.0,
        "control_passing.secure_configuration": 0.975,
        "control_passing.security_update_management": update_share(day),
        "control_passing.user_access_control": 0.9,
        "control_passing.malware_protection": 0.975,
        "vulnerabilities_open": {"critical": 1, "high": 3, "medium": 7, "low": 2, "unknown": 0},
        "vulnerabilities_overdue": 2 if late else 0,
        "kev_open": 1 if kev else 0,
        "kev_open_age_days": {
            "max": (day - KEV_LISTED).days if kev else None,
            "median": float((day - KEV_LISTED).days) if kev else None,
        },
        "remediation_days": {"count": 12, "median": 9.5, "p90": 21.0},
        "supplier_coverage_by_tier": {
            "1": {"suppliers": 8, "answered": 6, "share": 0.75},
            "2": {"suppliers": 5, "answered": 2, "share": 0.4},
        },
        "supplier_spof": 1,
        "supplier_uncertified_on_critical_path": 2,
        "alerts_open": {
            "incident": 0,
            "network_abuse": 1,
            "exposure": 0,
            "software_vulnerability": 2,
            "supplier_exposure": 0,
        },
        "alerts_raised": 1,
        "alerts_time_to_acknowledge": {"count": 5, "median_hours": 3.5, "p90_hours": 20.0},
        "alerts_time_to_mitigate": {"count": 4, "median_hours": 30.4, "p90_hours": 96.0},
    }


def build_series() -> dict[str, list[tuple[dt.date, object]]]:
    series: dict[str, list[tuple[dt.date, object]]] = {key: [] for key in metrics.METRIC_KEYS}
    day = FIRST_DAY
    while day <= PERIOD.last:
        if not GAP[0] <= day <= GAP[1]:
            for key, value in values_on(day).items():
                series[key].append((day, value))
        day += dt.timedelta(days=1)
    return series


@pytest.fixture(scope="module")
def governance() -> mapping.GovernanceMapping:
    return mapping.load()


@pytest.fixture(scope="module")
def content(governance) -> dict:
    return pack.compose(ORGANISATION, PERIOD, build_series(), governance, previous_reviewed=True)


@pytest.fixture(scope="module")
def rendered(content, governance, tmp_path_factory) -> dict[str, Path]:
    """Each language's PDF, rendered once for the module."""
    folder = tmp_path_factory.mktemp("pack")
    paths = {}
    for language in ("ja", "en"):
        path = folder / f"pack-{language}.pdf"
        path.write_bytes(render.pdf(content, language, governance=governance))
        paths[language] = path
    return paths


def run(*command: str) -> str:
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def pdf_text(path: Path, first: int | None = None, last: int | None = None) -> str:
    pages = [*(["-f", str(first)] if first else []), *(["-l", str(last)] if last else [])]
    return run("pdftotext", "-enc", "UTF-8", *pages, str(path), "-")


def flat(text: str) -> str:
    """pdftotext's text without its line breaks and spaces: a heading that wraps still matches."""
    return re.sub(r"\s+", "", text)


def translated(language: str, message: str) -> str:
    with translation.override(language):
        return translation.gettext(message)


# --- The content the tests stand on -------------------------------------------------------------


def test_the_constructed_year_tells_the_story_the_tests_expect(content):
    kinds = [decision["kind"] for decision in content["decisions"]]
    assert kinds == ["kev_overdue", "certificate_expiring", "single_supplier"]
    assert content["decisions"][0] == {"kind": "kev_overdue", "count": 1, "oldest_days": 20}
    assert content["decisions"][1]["days"] == 60
    controls = {row["key"]: row for row in content["controls"]}
    assert controls["security_update_management"]["status"] == "red"
    assert controls["security_update_management"]["status_before"] == "green"
    assert content["overall"] == "red"


# --- The PDF --------------------------------------------------------------------------------------


@needs_poppler
@pytest.mark.parametrize("language", ["ja", "en"])
def test_every_page_is_drawn(rendered, language, tmp_path):
    run("pdftoppm", "-r", "40", "-gray", "-png", str(rendered[language]), str(tmp_path / "page"))
    pages = sorted(tmp_path.glob("page-*.png"))
    # The summary and four appendices, the coverage table over more than one page.
    assert len(pages) >= 5
    for page in pages:
        image = Image.open(page)
        assert image.size[0] < image.size[1], "A4 portrait"
        histogram = image.convert("L").histogram()
        inked = sum(histogram[:200])
        assert inked / (image.size[0] * image.size[1]) > 0.005, f"{page.name} is blank"


@needs_poppler
def test_the_japanese_pack_reads_in_japanese(rendered, governance):
    text = pdf_text(rendered["ja"])
    summary = flat(pdf_text(rendered["ja"], 1, 1))
    # Headings the reporting pages share (their Japanese may come from the main catalogue).
    for message in ("Decisions for the board", "The five controls", "This period", "Period"):
        japanese = translated("ja", message)
        assert re.search("[\u3040-\u30ff\u4e00-\u9fff]", japanese), message
        assert flat(japanese) in summary, message
    headings = [
        "サイバー衛生に関する取締役会報告",
        "取締役会向けサマリー",
        "まもり信用金庫",
        *(LABELS[control]["ja"] for control in metrics.CONTROLS),
        *(principle.label("ja") for principle in governance.principles),
    ]
    for heading in headings:
        assert flat(heading) in summary, heading
    for appendix in ("付録A", "付録B", "付録C", "付録D"):
        assert appendix in flat(text)
    for domain in governance.domains:
        assert flat(domain.label("ja")) in flat(text)
    assert "Summary for the board" not in text
    assert "\ufffd" not in text


@needs_poppler
def test_the_english_pack_reads_in_english(rendered, governance):
    text = flat(pdf_text(rendered["en"]))
    summary = flat(pdf_text(rendered["en"], 1, 1))
    headings = [
        "Cyber hygiene report to the board",
        "Summary for the board",
        "Decisions for the board",
        # Escaped, not taken for markup: the name is printed as it was typed.
        "Mamori Shinkin <Bank> & Co",
        *(LABELS[control]["en"] for control in metrics.CONTROLS),
        *(principle.label("en") for principle in governance.principles),
    ]
    for heading in headings:
        assert flat(heading) in summary, heading
    for appendix in ("Appendix A", "Appendix B", "Appendix C", "Appendix D"):
        assert flat(appendix) in text
    assert "取締役会" not in text
    assert "\ufffd" not in text


@needs_poppler
@pytest.mark.parametrize("language", ["ja", "en"])
def test_the_decisions_are_on_the_summary_page(rendered, content, language):
    summary = flat(pdf_text(rendered[language], 1, 1))
    for decision in content["decisions"]:
        text = render.decision_text(decision, language)
        assert flat(text["title"]) in summary
        assert flat(text["why"]) in summary


@needs_poppler
@pytest.mark.parametrize("language", ["ja", "en"])
def test_the_digest_and_mapping_version_are_on_every_page(rendered, content, language):
    pages = pdf_text(rendered[language]).split("\f")
    pages = [page for page in pages if page.strip()]
    assert len(pages) >= 5
    for page in pages:
        assert content["digest"] in page
        assert content["mapping_version"] in page


@needs_poppler
@pytest.mark.parametrize("language", ["ja", "en"])
def test_the_japanese_font_is_embedded_and_has_every_character(rendered, language):
    fonts = run("pdffonts", str(rendered[language])).splitlines()[2:]
    assert fonts, "no font in the PDF"
    for line in fonts:
        # name type encoding emb sub uni object ID: every font is a subset of IPAexGothic,
        # embedded, with a Unicode map (so the text layer is the text).
        assert "IPAexGothic" in line.split()[0], line
        assert line.split()[-5:-2] == ["yes", "yes", "yes"], line
    # No tofu: each character of the text layer has a glyph in the embedded font.
    covered = TTFont(IPAEX).getBestCmap()
    text = pdf_text(rendered[language])
    missing = {
        char
        for char in text
        if not char.isspace() and unicodedata.category(char) != "Cc" and ord(char) not in covered
    }
    assert not missing, f"characters without a glyph: {sorted(missing)}"


@needs_poppler
def test_the_figures_appendix_gives_the_numbers(rendered):
    text = flat(pdf_text(rendered["en"]))
    for expected in ("20days", "60days", "75%", "97.5%", "30.4hours", "Tier1:shareanswered"):
        assert expected in text, expected
    japanese = flat(pdf_text(rendered["ja"]))
    for expected in ("20日", "60日", "75%", "一次"):
        assert expected in japanese, expected


def test_the_summary_fits_on_the_first_page(rendered):
    from pypdf import PdfReader

    for language in ("ja", "en"):
        reader = PdfReader(rendered[language])
        first = flat(reader.pages[0].extract_text())
        second = flat(reader.pages[1].extract_text())
        assert flat(translated(language, "Decisions for the board")) in first
        assert flat(translated(language, "Appendix A. The figures in detail")) in second


def test_only_the_charts_are_markup(content):
    hostile = {**content, "organisation": {"name_ja": "<b>悪</b>", "name_en": "<svg onload=x>"}}
    with translation.override("en"):
        data = render.context(hostile, "en")
        from django.template.loader import render_to_string

        html = render_to_string(render.TEMPLATE, data)
    assert "&lt;svg onload=x&gt;" in html
    assert "<svg onload" not in html
    assert "<b>" not in html


def test_a_period_without_samples_still_renders(governance):
    from django.template.loader import render_to_string

    empty = pack.compose({"id": 8, "name_ja": "空", "name_en": ""}, PERIOD, {}, governance)
    with translation.override("ja"):
        html = render_to_string(render.TEMPLATE, render.context(empty, "ja", governance))
    assert "今期は日次の指標がありません" in html
    assert "根拠不足" in html
    assert render.decision_text(empty["decisions"][0], "ja")["title"] in html
    book = load_workbook(io.BytesIO(render.xlsx(empty, "en", governance=governance)))
    assert book.worksheets[0]["B2"].value == "空"  # the only name it has
    assert book["Trends"].max_row == 1


def test_the_rules_appendix_reads_the_thresholds_pack_applies():
    tier = render.SUPPLIER_TIER1_AMBER
    below = {"1": {"share": tier - 0.0001}}
    assert pack.metric_status("supplier_coverage_by_tier", {"1": {"share": tier}}, {}) == "amber"
    assert pack.metric_status("supplier_coverage_by_tier", below, {}) == "red"
    for key in render.NOT_RATED:
        assert pack.metric_status(key, {"count": 1}, {}) == "grey"
    with translation.override("en"):
        rules = render.rules()
    assert rules[0]["green"] == "95% or more"
    assert rules[0]["red"] == "Below 80%"
    assert "14" in rules[3]["red"]


# --- Decisions in words -----------------------------------------------------------------------

EVERY_KIND = [
    {"kind": "kev_overdue", "count": 3, "oldest_days": 20},
    {"kind": "kev_open", "count": 1, "oldest_days": 5},
    {"kind": "incident_open", "count": 2},
    {"kind": "no_certificate"},
    {"kind": "certificate_expiring", "days": 60, "level": "PLUS"},
    {"kind": "single_supplier", "count": 4},
    {"kind": "overdue_vulnerabilities", "count": 7},
    {"kind": "controls_failing", "controls": ["firewalls", "malware_protection"]},
    {"kind": "supplier_survey", "share": 0.4},
]


@pytest.mark.parametrize("decision", EVERY_KIND, ids=lambda d: d["kind"])
def test_every_decision_kind_is_written_in_both_languages(decision):
    english = render.decision_text(decision, "en")
    japanese = render.decision_text(decision, "ja")
    assert english["title"]
    assert english["why"]
    assert japanese["title"] != english["title"]
    assert japanese["why"] != english["why"]
    for text in (*english.values(), *japanese.values()):
        assert "%(" not in text
    assert re.search("[\u3040-\u30ff\u4e00-\u9fff]", japanese["title"] + japanese["why"])
    for fact in ("count", "oldest_days", "days"):
        if fact in decision:
            assert str(decision[fact]) in english["title"] + english["why"]
            assert str(decision[fact]) in japanese["title"] + japanese["why"]


def test_decisions_name_their_facts():
    text = render.decision_text({"kind": "kev_overdue", "count": 3, "oldest_days": 20}, "en")
    assert text["title"] == (
        "Require the 3 known exploited vulnerabilities, open for up to 20 days, to be fixed now"
    )
    one = render.decision_text({"kind": "kev_overdue", "count": 1, "oldest_days": 20}, "en")
    assert "1 known exploited vulnerability," in one["title"]
    failing = render.decision_text(
        {"kind": "controls_failing", "controls": ["firewalls", "malware_protection"]}, "ja"
    )
    assert "ファイアウォール" in failing["title"]
    assert "マルウェア対策" in failing["title"]
    assert "80%" in failing["title"]
    survey = render.decision_text({"kind": "supplier_survey", "share": 0.4}, "en")
    assert "40%" in survey["title"]
    assert render.decision_text({"kind": "unheard_of"}, "en") == {"title": "unheard_of", "why": ""}


# --- The workbook -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workbooks(content, governance) -> dict[str, bytes]:
    return {
        language: render.xlsx(content, language, governance=governance) for language in ("ja", "en")
    }


@pytest.mark.parametrize("language", ["ja", "en"])
def test_the_workbook_has_its_sheets(workbooks, language):
    book = load_workbook(io.BytesIO(workbooks[language]))
    expected = [
        "Summary for the board",
        "Figures",
        "Trends",
        "Decisions for the board",
        "Coverage",
    ]
    assert book.sheetnames == [translated(language, title) for title in expected]
    for sheet in book.worksheets:
        assert sheet.freeze_panes is not None
        # The header is the row above the frozen pane: bold, every cell of it.
        header_row = sheet[sheet.freeze_panes].row - 1
        header = [cell for cell in sheet[header_row] if cell.value is not None]
        assert len(header) >= 5
        assert all(cell.font.bold for cell in header)
        assert sheet.column_dimensions["B"].width > 8


def rows_of(sheet) -> list[tuple]:
    return list(sheet.iter_rows(values_only=True))


def test_the_workbook_holds_the_figures(workbooks, content, governance):
    book = load_workbook(io.BytesIO(workbooks["en"]))
    summary = rows_of(book["Summary for the board"])
    assert ("Digest (SHA-256)", content["digest"]) == summary[6][:2]
    controls = {row[1]: row for row in summary if row[0] == "Control"}
    assert controls["security_update_management"][3:7] == ("Red", "Green", 0.75, 0.95)
    assert controls["firewalls"][5] == 1.0
    principles = [row for row in summary if row[0] == "Governance Code principle"]
    assert [row[1] for row in principles] == ["A", "B", "C", "D", "E"]

    figures = rows_of(book["Figures"])
    by_key = {}
    for row in figures[1:]:
        by_key.setdefault(row[0], []).append(row)
    assert by_key["kev_open"][0][3:5] == (1, 0)
    assert by_key["kev_open_age_days"][0][3] == 20
    assert by_key["certificate_days_to_expiry"][0][3] == 60
    assert by_key["control_passing.security_update_management"][0][3] == 0.75
    assert [row[2] for row in by_key["vulnerabilities_open"]][:2] == ["Critical", "High"]
    assert by_key["board_review"][0][3] == "Yes"
    assert set(by_key) == {*metrics.METRIC_KEYS, "board_review"}
    shares = book["Figures"]
    share_cell = next(
        row[3] for row in shares.iter_rows(min_row=2) if row[0].value.startswith("control_")
    )
    assert share_cell.number_format == "0.0%"

    trends = rows_of(book["Trends"])
    assert trends[0][0] == "Date"
    assert len(trends[0]) == 1 + len(pack.TREND_METRICS)
    days = [row[0].date() for row in trends[1:]]
    assert days == sorted(days)
    assert days[-1] == PERIOD.last
    assert GAP[0] not in days  # a day without samples is not invented
    last = dict(zip(trends[0], trends[-1], strict=True))
    with translation.override("en"):
        assert last[render.metric_label("kev_open")] == 1

    decisions = rows_of(book["Decisions for the board"])
    assert [row[1] for row in decisions[1:]] == [d["kind"] for d in content["decisions"]]
    assert decisions[1][2] == render.decision_text(content["decisions"][0], "en")["title"]

    coverage = rows_of(book["Coverage"])
    items = [row for row in coverage[1:] if row[0] == "FSA cyber security guidelines"]
    assert len(items) == len(governance.items)
    assert {row[4] for row in items} == {"Basic", "Desirable"}
    assert {row[5] for row in items} == {"Yes", "No"}


def test_the_japanese_workbook_is_in_japanese(workbooks):
    book = load_workbook(io.BytesIO(workbooks["ja"]))
    summary = rows_of(book.worksheets[0])
    assert summary[1][1] == "まもり信用金庫"
    statuses = {row[3] for row in summary[10:] if row[3]}
    assert statuses <= {"赤", "黄", "緑", "根拠不足"}
    coverage = rows_of(book.worksheets[4])
    assert {row[4] for row in coverage[1:] if row[4]} == {"基本対応事項", "対応が望ましい事項"}


def test_a_name_that_looks_like_a_formula_stays_text(content, governance):
    name = '=HYPERLINK("https://example.invalid/","open me")'
    hostile = {**content, "organisation": {"name_ja": "=1+1", "name_en": name}}
    data = render.xlsx(hostile, "en", governance=governance)
    cell = load_workbook(io.BytesIO(data)).worksheets[0]["B2"]
    assert cell.value == name
    assert cell.data_type == "s"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert b"<f>" not in archive.read("xl/worksheets/sheet1.xml")


def test_two_renders_are_byte_identical(workbooks, content, governance):
    # No normalising needed: the document's dates and the zip's are the period's end.
    assert render.xlsx(content, "en", governance=governance) == workbooks["en"]
    book = load_workbook(io.BytesIO(workbooks["en"]))
    assert book.properties.created == dt.datetime(2026, 9, 30)
    assert book.properties.modified == dt.datetime(2026, 9, 30)


def test_unknown_language_or_content_is_refused(content):
    with pytest.raises(ValueError, match="language"):
        render.xlsx(content, "fr")
    with pytest.raises(ValueError, match="schema"):
        render.pdf({**content, "schema": "other/1"}, "ja")
