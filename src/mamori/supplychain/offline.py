"""Offline answering of the supplier questionnaire: an Excel workbook (xlsx) or one CSV file to
download pre-filled, and the parsing of the filled file with errors that name the cell.

This module builds and reads files; it writes nothing to the database (``offline_import``
saves). Formats:

- **xlsx**: sheets ``instructions`` (Japanese and English), ``supply`` (one row per field:
  ``field`` / ``label`` / ``value`` / ``allowed``), ``sites`` and ``needs`` (one header row of
  column keys, one data row per site or per provider) and a hidden ``lists`` sheet behind the
  drop-down lists (countries, yes/no, disclosure, kinds). Only the ``value`` column of ``supply``
  and the data rows of ``sites`` and ``needs`` are read.
- **CSV**: a *single* UTF-8 file (with BOM, so Excel opens Japanese text correctly) with a
  ``section`` column (``supply`` / ``sites`` / ``needs``) and the union of the sheets' columns;
  each section uses its own columns and leaves the others empty. One file rather than a zip of
  three: one thing to download, edit and upload, and no archive to unpack on the server.

Reading is defensive: the size is limited, the format is decided by the content (a zip package
whose main part is an ordinary workbook, or text), never by the name alone; macro-enabled
workbooks (xlsm), templates, ActiveX, embedded objects and external links are refused; cells
holding formulas are refused (we do not trust cached results, and files written by other tools
have none), so every value is what the respondent typed. The work is bounded before it starts:
the file's size (``MAMORI_OFFLINE_UPLOAD_MAX_BYTES``), its unpacked size, and the rows of a sheet
(``max_sheet_rows``: a sheet that declares or holds more rows is refused without reading them).
Parsing runs in a worker (``offline_import.process_upload``), never in the upload request.

Every problem is reported with its place: ``needs!C7`` in a workbook, ``line 7, column J
(provider_country)`` in a CSV file.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from dataclasses import dataclass, field
from xml.etree import ElementTree

from django.conf import settings
from django.contrib.humanize.templatetags.humanize import intcomma
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.core.validators import validate_email
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

from mamori.core.errors import MamoriError
from mamori.core.text import spreadsheet_safe
from mamori.supplychain.models import Disclosure, InvitationStatus, NodeKind, SiteKind

# A filled questionnaire (500 sites and 500 providers) is about 0.4 MiB unpacked; parsing is
# linear in the XML read, so this bounds the work on a sheet stuffed with cells (~1.5 s at most).
MAX_UNPACKED_BYTES = 4 * 1024 * 1024
MAX_PACKAGE_PARTS = 200
MAX_COLUMNS = 40
MAX_ERRORS = 200

XLSX_MAIN = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ZIP_MAGIC = b"PK\x03\x04"
REFUSED_PARTS = ("vbaproject", "activex", "embeddings/", "externallinks/", "macrosheets/")
REFUSED_CONTENT = ("macroenabled", "vbaproject", "activex", "oleobject", "externallink")

# ISO 3166-1 alpha-2, the officially assigned codes.
_COUNTRY_CODES = """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
    DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
    GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
    KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
    MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
    SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
    VN VU WF WS YE YT ZA ZM ZW
    """
COUNTRIES = tuple(_COUNTRY_CODES.split())
COUNTRY_SET = frozenset(COUNTRIES)
YES = ("yes", "y", "true", "はい")
NO = ("no", "n", "false", "いいえ")

# (key, Japanese label, English label, allowed values shown beside the cell)
SUPPLY_FIELDS = (
    ("kind", "供給するもの", "What you supply", "ict / part"),
    ("name_ja", "サービス・部品の名称（日本語）", "Name of the service or part (Japanese)", ""),
    ("name_en", "サービス・部品の名称（英語）", "Name of the service or part (English)", ""),
    ("country", "提供元の国", "Country it is delivered from", "ISO 3166 (JP, US, …)"),
    ("corporate_number", "法人番号（13桁）", "Corporate number (13 digits)", ""),
    ("lei", "LEI（20文字）", "LEI (20 characters)", ""),
    ("parent_name", "最終親会社", "Ultimate parent company", ""),
    ("has_bcp", "事業継続計画（BCP）", "Business continuity plan", "yes / no"),
    (
        "recovery_hours",
        "復旧時間（時間）",
        "Recovery time after a disruption (hours)",
        "0, 1, 2, …",
    ),
    ("inventory_days", "在庫日数（物品のみ）", "Days of inventory (physical goods)", "0, 1, 2, …"),
    (
        "certification_declared",
        "セキュリティ認証の保有",
        "We hold a security certification (e.g. ISMS / ISO 27001)",
        "yes / no",
    ),
    (
        "certification_text",
        "認証と根拠（制度、番号、有効期限）",
        "Certification and evidence (scheme, number, validity)",
        "",
    ),
    (
        "disclosure",
        "サプライチェーンの開示範囲",
        "Disclosure of your supply chain",
        "full / partial / none",
    ),
)
SUPPLY_KEYS = tuple(f[0] for f in SUPPLY_FIELDS)
SUPPLY_COLUMNS = ("field", "label", "value", "allowed")
SITES_COLUMNS = ("site_name", "site_country", "data_location", "site_kind")
SITES_LABELS = (
    "拠点名・都市 / Site or city",
    "国 / Country (ISO 3166)",
    "データ所在地 / Data location (yes/no)",
    "種別 / Kind (production/office)",
)
NEEDS_COLUMNS = ("need", "provider_name", "provider_country", "provider_id", "provider_email")
NEEDS_LABELS = (
    "必要なもの / Need",
    "調達先 / Provider",
    "調達先の国 / Provider's country",
    "法人番号またはLEI / Corporate number or LEI",
    "招待するメール / E-mail to invite",
)
CSV_COLUMNS = ("section", "field", "value", *SITES_COLUMNS, *NEEDS_COLUMNS)
CSV_SECTION_COLUMNS = {
    "supply": ("field", "value"),
    "sites": SITES_COLUMNS,
    "needs": NEEDS_COLUMNS,
}
SECTIONS = ("supply", "sites", "needs")

INSTRUCTIONS = (
    ("記入方法", "How to fill in this workbook"),
    (
        "「supply」シートの value 列に、貴社が供給するサービス・部品について記入してください。",
        "In the 'supply' sheet, fill in the 'value' column about the service or part you supply.",
    ),
    (
        "「sites」シートには拠点とデータの所在地を1行に1件ずつ記入します。国は ISO 3166 の"
        "2文字コード（JP、US など）です。",
        "In the 'sites' sheet, one row per site or data location. Countries are ISO 3166 "
        "two-letter codes (JP, US, …).",
    ),
    (
        "「needs」シートには貴社が必要とするもの（ホスティング、電力、部品など）と調達先を、"
        "調達先ごとに1行で記入します。同じ必要なものに複数の行があれば代替の調達先です"
        "（すべてが止まったときだけ、その必要なものが失われます）。",
        "In the 'needs' sheet, one row per provider of each of your needs (hosting, power, a "
        "component, …). Several rows with the same need are alternatives: the need is lost "
        "only if all of them fail.",
    ),
    (
        "メールアドレスを記入した調達先には、取込み時に回答依頼が送られます（組織登録後のみ）。"
        "すでに招待した調達先は取込みで変わらず、シートから消しても残ります。",
        "Providers with an e-mail address are invited to answer when you upload the file "
        "(once your organisation is registered). Suppliers you already invited stay as they "
        "are, even if you remove their rows.",
    ),
    (
        "数式は使えません。値を直接入力してください。ヘッダー行とシート名は変更しないでください。",
        "Formulas are not accepted: type the values. Do not rename sheets or header rows.",
    ),
    (
        "記入後、回答ページからこのファイル（xlsx または CSV）をアップロードしてください。"
        "誤りがあればセルの位置とともに表示され、何も保存されません。",
        "Upload the file (xlsx or CSV) from the answers page. Any problem is listed with its "
        "cell, and nothing is saved until the file is correct.",
    ),
)


def max_upload_bytes() -> int:
    """The largest file accepted (``MAMORI_OFFLINE_UPLOAD_MAX_BYTES``)."""
    return settings.OFFLINE_UPLOAD_MAX_BYTES


def max_rows() -> int:
    """Rows of answers read per section (``MAMORI_OFFLINE_MAX_ROWS``): the template has room
    for this many below its header."""
    return settings.OFFLINE_MAX_ROWS


def max_sheet_rows() -> int:
    """Rows of a sheet read at all: the header, the answers, and as many again for empty rows
    that spreadsheet programs keep below the data (inserted rows, formats copied down). Work on
    a sheet is bounded by this, whatever the file declares or holds."""
    return 1 + 2 * max_rows()


class OfflineFileError(MamoriError):
    """The file cannot be imported; ``errors`` lists every problem with its place."""

    def __init__(self, errors: list[str]):
        self.errors = list(errors)[:MAX_ERRORS]
        super().__init__(self.errors[0] if self.errors else _("The file cannot be imported."))


# --- The pre-filled content ---------------------------------------------------------------------


def snapshot(invitation) -> dict:
    """The saved answers as plain rows, the same for both formats: what the answer page shows."""
    node = invitation.node
    entity = node.entity
    answered = invitation.status == InvitationStatus.ANSWERED

    def yes_no(value):
        return {True: "yes", False: "no"}.get(value, "")

    supply = {
        "kind": node.kind if node.kind in (NodeKind.ICT, NodeKind.PART) else NodeKind.ICT,
        "name_ja": node.name_ja if answered else "",
        "name_en": node.name_en if answered else "",
        "country": node.country,
        "corporate_number": entity.corporate_number,
        "lei": entity.lei,
        "parent_name": entity.ultimate_parent.name_ja if entity.ultimate_parent_id else "",
        "has_bcp": yes_no(node.has_bcp),
        "recovery_hours": node.recovery_hours,
        "inventory_days": node.inventory_days,
        "certification_declared": "yes" if node.certification_declared else "no",
        "certification_text": node.certification_text,
        "disclosure": node.disclosure if answered else Disclosure.FULL,
    }
    sites = [
        {
            "site_name": s.name,
            "site_country": s.country,
            "data_location": "yes" if s.kind == SiteKind.DATA else "no",
            "site_kind": "" if s.kind == SiteKind.DATA else s.kind,
        }
        for s in node.sites.order_by("pk")
    ]
    needs = []
    for need in node.needs.order_by("pk").prefetch_related(
        "provisions__provider__entity", "provisions__provider__invitation"
    ):
        provisions = sorted(need.provisions.all(), key=lambda p: p.pk)
        if not provisions:
            needs.append({"need": need.name})
        for provision in provisions:
            provider = provision.provider
            invited = getattr(provider, "invitation", None) if _has_invitation(provider) else None
            if invited is not None:
                # As the respondent named and invited it: the supplier's own answers stay its own.
                needs.append(
                    {
                        "need": need.name,
                        "provider_name": invited.supplier_name,
                        "provider_email": invited.email,
                    }
                )
                continue
            provider_entity = provider.entity
            needs.append(
                {
                    "need": need.name,
                    "provider_name": provider.name_ja or provider.name_en,
                    "provider_country": provider.country,
                    "provider_id": provider_entity.corporate_number or provider_entity.lei,
                }
            )
    return {"supply": supply, "sites": sites, "needs": needs}


def _has_invitation(node) -> bool:
    try:
        node.invitation  # noqa: B018 - the reverse one-to-one raises when absent
    except ObjectDoesNotExist:
        return False
    return True


# --- Building the files -------------------------------------------------------------------------


def build_xlsx(data: dict) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.worksheet.datavalidation import DataValidation

    book = Workbook()
    bold = Font(bold=True)
    head_fill = PatternFill("solid", fgColor="DDE7F0")
    wrap = Alignment(wrap_text=True, vertical="top")

    intro = book.active
    intro.title = "instructions"
    intro.column_dimensions["A"].width = 70
    intro.column_dimensions["B"].width = 70
    for row, (ja, en) in enumerate(INSTRUCTIONS, start=1):
        for col, text in ((1, ja), (2, en)):
            cell = intro.cell(row=row, column=col, value=text)
            cell.alignment = wrap
            if row == 1:
                cell.font = bold

    lists = book.create_sheet("lists")
    columns = (
        COUNTRIES,
        ("yes", "no"),
        tuple(Disclosure.values),
        (NodeKind.ICT.value, NodeKind.PART.value),
        (SiteKind.PRODUCTION.value, SiteKind.OFFICE.value),
    )
    for col, values in enumerate(columns, start=1):
        for row, value in enumerate(values, start=1):
            lists.cell(row=row, column=col, value=value)
    lists.sheet_state = "hidden"

    def list_rule(col_letter: str, count: int) -> DataValidation:
        rule = DataValidation(
            type="list", formula1=f"lists!${col_letter}$1:${col_letter}${count}", allow_blank=True
        )
        rule.error = _("Choose a value from the list.")
        rule.showErrorMessage = True
        return rule

    def whole_rule() -> DataValidation:
        rule = DataValidation(type="whole", operator="greaterThanOrEqual", formula1="0")
        rule.allow_blank = True
        rule.showErrorMessage = True
        rule.error = _("Enter a whole number of 0 or more.")
        return rule

    def header(sheet, keys, labels):
        for col, (key, label) in enumerate(zip(keys, labels, strict=True), start=1):
            cell = sheet.cell(row=1, column=col, value=f"{key}\n{label}")
            cell.font = bold
            cell.fill = head_fill
            cell.alignment = wrap
            sheet.column_dimensions[cell.column_letter].width = 32
        sheet.row_dimensions[1].height = 48
        sheet.freeze_panes = "A2"

    supply = book.create_sheet("supply")
    header(
        supply,
        SUPPLY_COLUMNS,
        ("項目キー / key", "項目 / item", "回答 / answer", "選択肢 / allowed"),
    )
    supply.column_dimensions["B"].width = 60
    supply.column_dimensions["C"].width = 48
    rules = {
        "kind": list_rule("D", 2),
        "country": list_rule("A", len(COUNTRIES)),
        "has_bcp": list_rule("B", 2),
        "certification_declared": list_rule("B", 2),
        "disclosure": list_rule("C", len(Disclosure.values)),
        "recovery_hours": whole_rule(),
        "inventory_days": whole_rule(),
    }
    for row, (key, label_ja, label_en, allowed) in enumerate(SUPPLY_FIELDS, start=2):
        supply.cell(row=row, column=1, value=key)
        supply.cell(row=row, column=2, value=f"{label_ja} / {label_en}").alignment = wrap
        _put(supply, row, 3, data["supply"].get(key))
        supply.cell(row=row, column=4, value=allowed)
        if key in rules:
            rules[key].add(f"C{row}")
            supply.add_data_validation(rules[key])
        if key in ("recovery_hours", "inventory_days"):
            supply.cell(row=row, column=3).number_format = "0"
        else:
            supply.cell(row=row, column=3).number_format = "@"

    last = max_rows() + 1
    sites = book.create_sheet("sites")
    header(sites, SITES_COLUMNS, SITES_LABELS)
    for row, item in enumerate(data["sites"], start=2):
        for col, key in enumerate(SITES_COLUMNS, start=1):
            _put(sites, row, col, item.get(key))
    for letter, rule in (
        ("B", list_rule("A", len(COUNTRIES))),
        ("C", list_rule("B", 2)),
        ("D", list_rule("E", 2)),
    ):
        rule.add(f"{letter}2:{letter}{last}")
        sites.add_data_validation(rule)

    needs = book.create_sheet("needs")
    header(needs, NEEDS_COLUMNS, NEEDS_LABELS)
    for row, item in enumerate(data["needs"], start=2):
        for col, key in enumerate(NEEDS_COLUMNS, start=1):
            _put(needs, row, col, item.get(key))
    rule = list_rule("A", len(COUNTRIES))
    rule.add(f"C2:C{last}")
    needs.add_data_validation(rule)
    # Identifiers and codes are text: keep Excel from turning a corporate number into 1.23E+12.
    for sheet, letters in ((sites, "B"), (needs, "CD")):
        for letter in letters:
            for row in range(2, last + 1):
                sheet[f"{letter}{row}"].number_format = "@"

    book.move_sheet("lists", offset=len(book.sheetnames) - 1 - book.sheetnames.index("lists"))
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _put(sheet, row: int, col: int, value) -> None:
    if value is None or value == "":
        return
    cell = sheet.cell(row=row, column=col, value=value)
    if isinstance(value, str) and value.startswith("="):
        cell.data_type = "s"  # text that merely starts with "=", never a formula


def build_csv(data: dict) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)

    def row(section: str, values: dict) -> list[str]:
        line = {"section": section, **values}
        return [spreadsheet_safe(line.get(key)) for key in CSV_COLUMNS]

    for key in SUPPLY_KEYS:
        writer.writerow(row("supply", {"field": key, "value": data["supply"].get(key)}))
    for item in data["sites"]:
        writer.writerow(row("sites", item))
    for item in data["needs"]:
        writer.writerow(row("needs", item))
    return ("\ufeff" + out.getvalue()).encode("utf-8")


# --- Reading a file -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    value: object
    ref: str


@dataclass
class Provider:
    name: str
    country: str
    corporate_number: str
    lei: str
    email: str
    ref: str
    email_ref: str


@dataclass
class NeedGroup:
    name: str
    ref: str
    providers: list[Provider] = field(default_factory=list)


@dataclass
class SiteAnswer:
    kind: str
    name: str
    country: str


@dataclass
class Parsed:
    """A valid file's content, in the shape ``services.save_answers`` wants, plus the places of
    the cells a later check (against the database) may need to name."""

    format: str
    answers: dict
    sites: list[SiteAnswer]
    needs: list[NeedGroup]
    refs: dict[str, str]


class _Errors:
    """Problems in reading order. Cells refused while reading (formulas, error values) are
    reported once: later checks of the same cell are dropped."""

    def __init__(self):
        self.items: list[str] = []
        self.refused: set[str] = set()

    def add(self, ref: str, message: str) -> None:
        if ref and ref in self.refused:
            return
        self.items.append(f"{ref}: {message}" if ref else message)

    def refuse(self, ref: str, message: str) -> None:
        self.add(ref, message)
        self.refused.add(ref)

    def raise_if_any(self) -> None:
        if self.items:
            raise OfflineFileError(self.items)


def check_file(filename: str, data: bytes) -> str:
    """The checks that need no parsing (size, name, the first bytes): what the upload request
    itself refuses at once. Returns the format, ``"xlsx"`` or ``"csv"``."""
    name = (filename or "").lower().rsplit("/", 1)[-1]
    if len(data) > max_upload_bytes():
        raise OfflineFileError([too_large_message()])
    if not data:
        raise OfflineFileError([_("The file is empty.")])
    extension = name.rsplit(".", 1)[-1] if "." in name else ""
    if extension in ("xlsm", "xltm", "xlsb", "xla", "xlam"):
        raise OfflineFileError(
            [_("Macro-enabled or binary workbooks are not accepted: save the file as .xlsx.")]
        )
    if extension not in ("xlsx", "csv"):
        raise OfflineFileError([_("Upload the questionnaire as an .xlsx or .csv file.")])
    if data.startswith(OLE_MAGIC):
        raise OfflineFileError(
            [
                _(
                    "This is an old-format (.xls) or password-protected workbook: save it as an "
                    "unprotected .xlsx file."
                )
            ]
        )
    is_zip = data.startswith(ZIP_MAGIC)
    if extension == "xlsx" and not is_zip:
        raise OfflineFileError([_("The file is named .xlsx but is not an Excel workbook.")])
    if extension == "csv" and is_zip:
        raise OfflineFileError([_("The file is named .csv but is not a text (CSV) file.")])
    return extension


def parse_upload(filename: str, data: bytes) -> Parsed:
    """Parse and validate an uploaded file. Raises ``OfflineFileError`` listing every problem.
    The work is bounded by the file's size, its unpacked size and the rows read per sheet."""
    fmt = check_file(filename, data)
    sections, errors = _read_xlsx(data) if fmt == "xlsx" else _read_csv(data)
    return _validate(fmt, sections, errors)


def too_large_message() -> str:
    return _("The file is larger than the limit of %(size)s.") % {
        "size": filesizeformat(max_upload_bytes())
    }


def _check_package(data: bytes) -> zipfile.ZipFile:
    try:
        package = zipfile.ZipFile(io.BytesIO(data))
        parts = package.infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        raise OfflineFileError([_("The file is not a readable Excel workbook.")]) from None
    if len(parts) > MAX_PACKAGE_PARTS:
        raise OfflineFileError([_("The workbook has too many parts.")])
    for part in parts:
        lowered = part.filename.lower()
        if any(marker in lowered for marker in REFUSED_PARTS):
            raise OfflineFileError(
                [
                    _(
                        "The workbook contains macros, embedded objects or external links "
                        "(%(part)s): save a plain .xlsx without them."
                    )
                    % {"part": part.filename}
                ]
            )
    unpacked = 0
    try:
        for part in parts:
            with package.open(part) as stream:
                while chunk := stream.read(64 * 1024):
                    unpacked += len(chunk)
                    if unpacked > MAX_UNPACKED_BYTES:
                        raise OfflineFileError([_("The workbook is too large once unpacked.")])
        content_types = package.read("[Content_Types].xml")
    except OfflineFileError:
        raise
    except (KeyError, zipfile.BadZipFile, RuntimeError, OSError, EOFError, ValueError):
        raise OfflineFileError([_("The file is not a readable Excel workbook.")]) from None
    try:
        # Bounded in size above; expat >= 2.4.1 limits entity expansion, and ElementTree
        # never fetches external entities.
        root = ElementTree.fromstring(content_types)  # noqa: S314
    except ElementTree.ParseError:
        raise OfflineFileError([_("The file is not a readable Excel workbook.")]) from None
    types = [(el.get("PartName") or "", el.get("ContentType") or "") for el in root]
    if any(any(marker in ct.lower() for marker in REFUSED_CONTENT) for _part, ct in types):
        raise OfflineFileError(
            [_("Macro-enabled workbooks (.xlsm) and embedded content are not accepted.")]
        )
    if not any(ct == XLSX_MAIN for _part, ct in types):
        raise OfflineFileError(
            [_("The file is not an ordinary Excel workbook (.xlsx): save it as .xlsx.")]
        )
    return package


def _read_xlsx(data: bytes) -> tuple[dict[str, list[list[Cell]]], _Errors]:
    from openpyxl import load_workbook

    _check_package(data)
    try:
        book = load_workbook(
            io.BytesIO(data), read_only=True, data_only=False, keep_vba=False, keep_links=False
        )
    except Exception:  # openpyxl raises many kinds on a damaged package
        raise OfflineFileError([_("The file is not a readable Excel workbook.")]) from None
    errors = _Errors()
    fatal = False
    by_name = {name.strip().lower(): name for name in book.sheetnames}
    sections: dict[str, list[list[Cell]]] = {}
    try:
        for section in SECTIONS:
            if section not in by_name:
                errors.add("", _("The sheet '%(sheet)s' is missing.") % {"sheet": section})
                fatal = True
                continue
            sheet = book[by_name[section]]
            _check_declared_rows(section, sheet)
            rows, fatal_here = _read_sheet(section, sheet, errors)
            fatal = fatal or fatal_here
            sections[section] = rows
    except OfflineFileError:
        raise
    except Exception:
        raise OfflineFileError([_("The file is not a readable Excel workbook.")]) from None
    finally:
        book.close()
    if fatal:
        errors.raise_if_any()
    return sections, errors


def _check_declared_rows(section: str, sheet) -> None:
    """Refuse a sheet whose declared dimension (``<dimension ref="A1:E1048576">``) is beyond
    the rows read, before any row is parsed: such a file is either hostile or not the
    questionnaire. The dimension is optional; ``_read_sheet`` bounds the rows actually read."""
    declared = sheet.max_row
    if declared is not None and declared > max_sheet_rows():
        raise OfflineFileError(
            [
                _(
                    "The sheet '%(sheet)s' declares %(rows)s rows; at most %(limit)s rows are "
                    "read (a header and %(answers)s rows of answers, with room for empty rows). "
                    "Delete the rows below your answers, or use the CSV file."
                )
                % {"sheet": section, "rows": intcomma(declared), **_row_limits()}
            ]
        )


def _row_limits() -> dict[str, str]:
    return {"limit": intcomma(max_sheet_rows()), "answers": intcomma(max_rows())}


def _read_sheet(section: str, sheet, errors: _Errors) -> tuple[list[list[Cell]], bool]:
    """The header row and the rows holding something, at most ``max_sheet_rows()`` rows read.
    Returns the rows and whether reading had to stop (too many rows of answers)."""
    from openpyxl.utils import get_column_letter

    limit = max_sheet_rows()
    letters = [get_column_letter(col) for col in range(1, MAX_COLUMNS + 1)]
    rows: list[list[Cell]] = []
    # One row past the limit is asked for: openpyxl stops parsing there (and fills the rows
    # up to it), so a row below the limit shows as row limit + 1 and is refused.
    for row_number, row in enumerate(
        sheet.iter_rows(min_row=1, max_row=limit + 1, max_col=MAX_COLUMNS), start=1
    ):
        if row_number > limit:
            raise OfflineFileError(
                [
                    _(
                        "The sheet '%(sheet)s' has rows below row %(limit)s; at most %(limit)s "
                        "rows are read (a header and %(answers)s rows of answers, with room for "
                        "empty rows). Delete the rows below your answers, or use the CSV file."
                    )
                    % {"sheet": section, **_row_limits()}
                ]
            )
        cells = []
        for letter, cell in zip(letters, row, strict=False):
            ref = f"{section}!{letter}{row_number}"
            data_type = getattr(cell, "data_type", None)
            if data_type == "f":
                errors.refuse(ref, _("formulas are not accepted; type the value instead"))
                cells.append(Cell(None, ref))
            elif data_type == "e":
                errors.refuse(
                    ref,
                    _("the cell holds an error value (%(value)s)")
                    % {"value": str(cell.value)[:20]},
                )
                cells.append(Cell(None, ref))
            else:
                cells.append(Cell(cell.value, ref))
        if any(_present(c.value) or c.ref in errors.refused for c in cells):
            if row_number > max_rows() + 1:
                errors.add(
                    f"{section}!{row_number}",
                    _("too many rows: at most %(max)s rows are read") % {"max": max_rows()},
                )
                return rows, True
            rows.append(cells)
        elif row_number == 1:
            rows.append(cells)
    return rows, False


def _present(value) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def _read_csv(data: bytes) -> tuple[dict[str, list[list[Cell]]], _Errors]:
    from openpyxl.utils import get_column_letter

    if b"\x00" in data:
        raise OfflineFileError([_("The file is not a text (CSV) file.")])
    text = None
    for encoding in ("utf-8-sig", "cp932"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    if text is None:
        raise OfflineFileError([_("The CSV file is neither UTF-8 nor Shift_JIS text.")])
    errors = _Errors()
    lines: list[list[str]] = []
    starts: list[int] = []  # the physical line each record starts on (quoted fields may span)
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        previous = 0
        for record in reader:
            lines.append(record)
            starts.append(previous + 1)
            previous = reader.line_num
            if len(lines) > len(SECTIONS) * max_rows() + len(SUPPLY_FIELDS) + 1:
                break
    except csv.Error as exc:
        raise OfflineFileError(
            [_("The CSV file is malformed: %(error)s") % {"error": exc}]
        ) from None
    if not lines:
        raise OfflineFileError([_("The file is empty.")])
    if len(lines) > len(SECTIONS) * max_rows() + len(SUPPLY_FIELDS) + 1:
        raise OfflineFileError(
            [_("too many rows: at most %(max)s rows per section are read") % {"max": max_rows()}]
        )

    def ref(line: int, index: int) -> str:
        name = header[index] if index < len(header) else ""
        column = get_column_letter(index + 1) + (f" ({name})" if name else "")
        return _("line %(line)s, column %(column)s") % {"line": line, "column": column}

    header = [_header_key(v) for v in lines[0]]
    positions = {}
    for index, key in enumerate(header):
        if not key:
            continue
        if key not in CSV_COLUMNS:
            errors.add(ref(1, index), _("unknown column '%(name)s'") % {"name": key})
        elif key in positions:
            errors.add(ref(1, index), _("the column '%(name)s' appears twice") % {"name": key})
        else:
            positions[key] = index
    for key in CSV_COLUMNS:
        if key not in positions:
            errors.add(_("line 1"), _("the column '%(name)s' is missing") % {"name": key})
    errors.raise_if_any()

    sections: dict[str, list[list[Cell]]] = {}
    for section in SECTIONS:
        columns = SUPPLY_COLUMNS if section == "supply" else CSV_SECTION_COLUMNS[section]
        sections[section] = [[Cell(key, "") for key in columns]]
    for line_number, values in zip(starts[1:], lines[1:], strict=True):
        values = [_csv_unquote(v) for v in values]
        if not any(v.strip() for v in values):
            continue
        for index in range(len(header), len(values)):
            if values[index].strip():
                errors.add(ref(line_number, index), _("a value outside the file's columns"))
        section = (
            values[positions["section"]].strip().lower()
            if positions["section"] < len(values)
            else ""
        )
        if section not in CSV_SECTION_COLUMNS:
            errors.add(
                ref(line_number, positions["section"]),
                _("unknown section '%(value)s' (use supply, sites or needs)") % {"value": section},
            )
            continue
        used = CSV_SECTION_COLUMNS[section]
        for key in CSV_COLUMNS[1:]:
            index = positions[key]
            value = values[index] if index < len(values) else ""
            if key not in used and value.strip():
                errors.add(
                    ref(line_number, index),
                    _("this column is not used in the section '%(section)s'")
                    % {"section": section},
                )

        def cell(key: str, line=line_number, vals=values) -> Cell:
            index = positions[key]
            return Cell(vals[index] if index < len(vals) else "", ref(line, index))

        if section == "supply":
            field_cell = cell("field")
            sections[section].append(
                [field_cell, Cell("", field_cell.ref), cell("value"), Cell("", "")]
            )
        else:
            sections[section].append([cell(key) for key in used])
    for section in SECTIONS:
        if len(sections[section]) - 1 > max_rows():
            errors.add(
                "",
                _("%(section)s: too many rows: at most %(max)s rows are read")
                % {"section": section, "max": max_rows()},
            )
            errors.raise_if_any()
    return sections, errors


def _csv_unquote(value: str) -> str:
    if len(value) > 1 and value[0] == "'" and value[1] in ("=", "+", "-", "@", "\t", "\r"):
        return value[1:]
    return value


def _header_key(value) -> str:
    if value is None:
        return ""
    return str(value).strip().splitlines()[0].strip().lower() if str(value).strip() else ""


# --- Validation, shared by both formats ---------------------------------------------------------


def _check_header(errors: _Errors, section: str, rows, expected) -> bool:
    first = rows[0] if rows else []
    keys = [_header_key(c.value) for c in first]
    ok = True
    for index, key in enumerate(expected):
        found = keys[index] if index < len(keys) else ""
        if found != key:
            ref = first[index].ref if index < len(first) else f"{section}!1"
            errors.add(
                ref or section,
                _("the header should be '%(expected)s', found '%(found)s'")
                % {"expected": key, "found": found},
            )
            ok = False
    return ok


def _text(errors: _Errors, cell: Cell, *, max_length: int, required=False, label="") -> str:
    value = cell.value
    if value is None:
        text = ""
    elif isinstance(value, (bool, dt.date, dt.time, dt.timedelta)):
        errors.add(cell.ref, _("expected text, found %(value)s") % {"value": _shown(value)})
        return ""
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))
    else:
        text = str(value)
    text = text.strip()
    if required and not text:
        errors.add(cell.ref, _("%(what)s is required") % {"what": label or _("a value")})
    if len(text) > max_length:
        errors.add(cell.ref, _("longer than %(limit)s characters") % {"limit": max_length})
        return text[:max_length]
    return text


def _shown(value) -> str:
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return f"'{text[:40]}'"


def _country(errors: _Errors, cell: Cell, *, required=False) -> str:
    text = _text(errors, cell, max_length=100).upper()
    if not text:
        if required:
            errors.add(cell.ref, _("the country is required (ISO 3166 code such as JP)"))
        return ""
    if text not in COUNTRY_SET:
        errors.add(
            cell.ref, _("country '%(value)s' is not an ISO 3166 code") % {"value": text[:40]}
        )
        return ""
    return text


def _choice(errors: _Errors, cell: Cell, choices, *, required=False, default="") -> str:
    text = _text(errors, cell, max_length=100).lower()
    if not text:
        if required and not default:
            errors.add(cell.ref, _("choose one of: %(choices)s") % {"choices": ", ".join(choices)})
        return default
    if text not in choices:
        errors.add(
            cell.ref,
            _("'%(value)s' is not one of: %(choices)s")
            % {"value": text[:40], "choices": ", ".join(choices)},
        )
        return default
    return text


def _yes_no(errors: _Errors, cell: Cell) -> bool | None:
    value = cell.value
    if isinstance(value, bool):
        return value
    text = _text(errors, cell, max_length=20).lower()
    if not text:
        return None
    if text in YES:
        return True
    if text in NO:
        return False
    errors.add(cell.ref, _("'%(value)s' is not yes or no") % {"value": text})
    return None


def _whole(errors: _Errors, cell: Cell) -> int | None:
    value = cell.value
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    number = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        number = int(value.strip())
    if number is None:
        errors.add(cell.ref, _("%(value)s is not a whole number") % {"value": _shown(value)})
        return None
    if number < 0 or number > 1_000_000:
        errors.add(cell.ref, _("enter a whole number from 0 to 1000000"))
        return None
    return number


def _corporate_number(errors: _Errors, cell: Cell) -> str:
    from mamori.organisations.models import validate_corporate_number

    text = _text(errors, cell, max_length=13)
    if text:
        try:
            validate_corporate_number(text)
        except ValidationError as exc:
            errors.add(cell.ref, " ".join(exc.messages))
            return ""
    return text


def _lei(errors: _Errors, cell: Cell) -> str:
    text = _text(errors, cell, max_length=20).upper()
    if text and (len(text) != 20 or not text.isalnum() or not text.isascii()):
        errors.add(cell.ref, _("an LEI has 20 letters and digits"))
        return ""
    return text


def _provider_id(errors: _Errors, cell: Cell) -> tuple[str, str]:
    """A 13-digit corporate number or a 20-character LEI."""
    text = _text(errors, cell, max_length=40).upper()
    if not text:
        return "", ""
    if text.isdigit():
        return _corporate_number(errors, Cell(text, cell.ref)), ""
    if len(text) == 20 and text.isalnum() and text.isascii():
        return "", text
    errors.add(
        cell.ref,
        _("'%(value)s' is neither a 13-digit corporate number nor a 20-character LEI")
        % {"value": text[:40]},
    )
    return "", ""


def _validate(fmt: str, sections: dict[str, list[list[Cell]]], errors: _Errors) -> Parsed:
    """Check every value; structural problems (headers, missing fields) stop early, the rest
    are all collected."""
    headers_ok = True
    for section, expected in (
        ("supply", SUPPLY_COLUMNS),
        ("sites", SITES_COLUMNS),
        ("needs", NEEDS_COLUMNS),
    ):
        rows = sections[section]
        if fmt == "xlsx":
            if not _check_header(errors, section, rows, expected):
                headers_ok = False
            for row in rows[1:]:
                for extra in row[len(expected) :]:
                    if _present(extra.value):
                        errors.add(extra.ref, _("a value outside the template's columns"))
    if not headers_ok:
        errors.raise_if_any()

    # supply: one row per field, read from the value column
    values: dict[str, Cell] = {}
    for row in sections["supply"][1:]:
        key_cell = row[0] if row else Cell(None, "")
        value_cell = row[2] if len(row) > 2 else Cell(None, key_cell.ref)
        key = _header_key(key_cell.value)
        if not key:
            if _present(value_cell.value):
                errors.add(key_cell.ref, _("a value without a field name"))
            continue
        if key not in SUPPLY_KEYS:
            errors.add(key_cell.ref, _("unknown field '%(name)s'") % {"name": key[:40]})
        elif key in values:
            errors.add(key_cell.ref, _("the field '%(name)s' appears twice") % {"name": key})
        else:
            values[key] = value_cell
    missing = [key for key in SUPPLY_KEYS if key not in values]
    for key in missing:
        errors.add("supply", _("the row for the field '%(name)s' is missing") % {"name": key})
    if missing:
        errors.raise_if_any()

    answers = {
        "kind": _choice(errors, values["kind"], (NodeKind.ICT, NodeKind.PART), required=True),
        "name_ja": _text(
            errors, values["name_ja"], max_length=200, required=True, label=_("the name")
        ),
        "name_en": _text(errors, values["name_en"], max_length=200),
        "country": _country(errors, values["country"], required=True),
        "corporate_number": _corporate_number(errors, values["corporate_number"]),
        "lei": _lei(errors, values["lei"]),
        "parent_name": _text(errors, values["parent_name"], max_length=200),
        "has_bcp": _yes_no(errors, values["has_bcp"]),
        "recovery_hours": _whole(errors, values["recovery_hours"]),
        "inventory_days": _whole(errors, values["inventory_days"]),
        "certification_declared": bool(_yes_no(errors, values["certification_declared"])),
        "certification_text": _text(errors, values["certification_text"], max_length=4000),
        "disclosure": _choice(
            errors, values["disclosure"], tuple(Disclosure.values), required=True
        ),
    }
    answers["country_of_entity"] = answers["country"]

    sites: list[SiteAnswer] = []
    for row in sections["sites"][1:]:
        cells = dict(zip(SITES_COLUMNS, _pad(row, len(SITES_COLUMNS)), strict=True))
        if not any(_present(c.value) for c in cells.values()):
            continue
        name = _text(errors, cells["site_name"], max_length=200)
        country = _country(errors, cells["site_country"], required=True)
        data_location = _yes_no(errors, cells["data_location"])
        kind = _choice(
            errors,
            cells["site_kind"],
            (SiteKind.PRODUCTION, SiteKind.OFFICE, SiteKind.DATA),
            default=SiteKind.PRODUCTION,
        )
        if data_location:
            kind = SiteKind.DATA
        elif kind == SiteKind.DATA and data_location is False:
            errors.add(
                cells["site_kind"].ref,
                _("a data location needs 'yes' in data_location, not the kind 'data'"),
            )
        sites.append(SiteAnswer(kind, name, country))

    groups: dict[str, NeedGroup] = {}
    seen: dict[tuple[str, str], str] = {}
    for row in sections["needs"][1:]:
        cells = dict(zip(NEEDS_COLUMNS, _pad(row, len(NEEDS_COLUMNS)), strict=True))
        if not any(_present(c.value) for c in cells.values()):
            continue
        need = _text(errors, cells["need"], max_length=200, required=True, label=_("the need"))
        provider = _text(errors, cells["provider_name"], max_length=200)
        country = _country(errors, cells["provider_country"])
        corporate_number, lei = _provider_id(errors, cells["provider_id"])
        email = _text(errors, cells["provider_email"], max_length=254)
        if email:
            try:
                validate_email(email)
            except ValidationError:
                errors.add(
                    cells["provider_email"].ref,
                    _("'%(value)s' is not an e-mail address") % {"value": email[:60]},
                )
        if not provider and (country or corporate_number or lei or email):
            errors.add(cells["provider_name"].ref, _("name the provider of this row"))
        if not need:
            continue
        group = groups.setdefault(need, NeedGroup(need, cells["need"].ref))
        if not provider:
            continue
        key = (need, provider.casefold())
        if key in seen:
            errors.add(
                cells["provider_name"].ref,
                _(
                    "the provider '%(name)s' is listed twice for the need '%(need)s' (first at "
                    "%(first)s)"
                )
                % {"name": provider, "need": need, "first": seen[key]},
            )
            continue
        seen[key] = cells["provider_name"].ref
        group.providers.append(
            Provider(
                name=provider,
                country=country,
                corporate_number=corporate_number,
                lei=lei,
                email=email,
                ref=cells["provider_name"].ref,
                email_ref=cells["provider_email"].ref,
            )
        )
    errors.raise_if_any()
    return Parsed(
        format=fmt,
        answers=answers,
        sites=sites,
        needs=list(groups.values()),
        refs={key: cell.ref for key, cell in values.items()},
    )


def _pad(row: list[Cell], width: int) -> list[Cell]:
    row = list(row[:width])
    while len(row) < width:
        row.append(Cell(None, row[-1].ref if row else ""))
    return row
