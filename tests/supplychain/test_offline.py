"""Offline answering: the questionnaire downloaded as xlsx or CSV, filled outside Mamori and
uploaded back. Round trips through the real pages, every refusal names its cell and writes
nothing, and only those who may answer see the pages."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile

import pytest
from django.core import mail
from django.test import Client, TestCase
from django.utils import timezone, translation
from openpyxl import load_workbook

from mamori.audit.models import AuditEvent
from mamori.organisations.access import Access
from mamori.organisations.models import Category, Organisation, Role
from mamori.supplychain import offline, services
from mamori.supplychain.models import (
    Entity,
    ImportState,
    Invitation,
    InvitationStatus,
    Need,
    Node,
    OfflineImport,
    Provision,
    Site,
)
from tests.conftest import client_for, make_user

LINK = re.compile(r"https?://[^\s]+/supply/i/([A-Za-z0-9_\-]+)/")


@pytest.fixture(autouse=True)
def in_english(settings):
    """These tests read the messages in English (the default UI language is Japanese; the
    Japanese catalogue is checked by tests/core/test_translations.py)."""
    settings.LANGUAGE_CODE = "en"
    with translation.override("en"):
        yield


def corporate_number(base: str) -> str:
    """A valid 13-digit corporate number for twelve digits ``base``."""
    total = sum(
        int(d) * (1 if position % 2 else 2) for position, d in enumerate(reversed(base), start=1)
    )
    return str(9 - total % 9) + base


CORP_A = corporate_number("123456789012")
CORP_P = corporate_number("210987654321")
LEI = "5493001KJTIIGC8Y1R12"


@pytest.fixture
def chain(world, django_capture_on_commit_callbacks):
    """The bank's service, a survey, and Tier-1 supplier A (an organisation) bound to it; and
    a second Tier-1 invitation left unbound (its link is for a supplier without an account)."""
    access = Access.for_user(world.admin)
    service = services.create_service(
        world.admin, access, world.bank, name_ja="勘定系システム", name_en="Core banking"
    )
    campaign = services.create_campaign(
        world.admin,
        access,
        world.bank,
        title="2026 survey",
        services=[service],
        deadline=timezone.localdate() + dt.timedelta(days=30),
        site_url="http://testserver/",
    )
    org_a = Organisation.objects.create(
        name_ja="ベンダーA", name_en="Vendor A", category=Category.IT_VENDOR
    )
    user_a = make_user("vendor-a", org_a, Role.APPLICANT_ADMIN)
    with django_capture_on_commit_callbacks(execute=True):
        sent = services.invite(
            world.admin,
            access,
            campaign=campaign,
            for_node=service,
            need="hosting",
            supplier_name="Vendor A",
            country="JP",
            email="a@example.jp",
            site_url="http://testserver/",
        )
        unbound = services.invite(
            world.admin,
            access,
            campaign=campaign,
            for_node=service,
            need="network",
            supplier_name="Carrier",
            country="JP",
            email="carrier@example.jp",
            site_url="http://testserver/",
        )
    invitation = services.bind(user_a, Access.for_user(user_a), sent.invitation, org_a)
    mail.outbox.clear()
    return type(
        "Chain",
        (),
        {
            "service": service,
            "campaign": campaign,
            "invitation": invitation,
            "user_a": user_a,
            "org_a": org_a,
            "unbound": unbound.invitation,
            "unbound_token": unbound.token,
        },
    )


def url(invitation, what="") -> str:
    base = f"/supply/responses/{invitation.pk}/offline/"
    return base + {"": "", "xlsx": "questionnaire.xlsx", "csv": "questionnaire.csv"}[what]


def download_book(client, invitation):
    response = client.get(url(invitation, "xlsx"))
    assert response.status_code == 200
    assert response["Content-Type"] == offline.XLSX_MIME
    return load_workbook(io.BytesIO(response.content))


def save(book) -> bytes:
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def upload(client, invitation, data: bytes, name="answers.xlsx"):
    """Upload the file as the page does and let the queued import run (in-process, as on the
    embedded default, once the upload is committed); returns the upload's page, or the upload
    page itself when it refused the file at once."""
    file = io.BytesIO(data)
    file.name = name
    with TestCase.captureOnCommitCallbacks(execute=True):
        posted = client.post(url(invitation), {"file": file})
    if posted.status_code != 302:
        return posted
    assert re.fullmatch(rf"{url(invitation)}uploads/\d+/", posted["Location"]), posted["Location"]
    return client.get(posted["Location"])


def imported(response) -> OfflineImport:
    assert response.status_code == 200, response.content.decode()[:3000]
    stored = response.context["upload"]
    assert stored.state == ImportState.IMPORTED, stored.errors
    assert "Your answers were imported" in response.content.decode()
    return stored


def refused(response) -> list[str]:
    """The errors shown for a refused file: at once by the upload page (422), or on the
    upload's page once the worker refused it. Either way nothing was saved."""
    page = response.content.decode()
    assert "Nothing was saved" in page or "何も保存" in page, page[:3000]
    if response.status_code == 422:
        return response.context["errors"]
    assert response.status_code == 200
    stored = response.context["upload"]
    assert stored.state == ImportState.FAILED
    assert bytes(OfflineImport.objects.get(pk=stored.pk).content) == b""  # not kept
    return stored.errors


SUPPLY = {
    "kind": "part",
    "name_ja": "人工呼吸器用バルブ",
    "name_en": "Ventilator valve",
    "country": "JP",
    "corporate_number": CORP_A,
    "lei": "",
    "parent_name": "ホールディングスA",
    "has_bcp": "yes",
    "recovery_hours": 48,
    "inventory_days": 30,
    "certification_declared": "yes",
    "certification_text": "ISO 27001, JP-123, valid to 2027-03",
    "disclosure": "partial",
}
SITES = [
    ("Osaka plant", "JP", "no", "production"),
    ("Frankfurt DC", "DE", "yes", ""),
    ("Taipei office", "TW", "no", "office"),
]
NEEDS = [
    ("resin", "樹脂商事", "JP", CORP_P, ""),
    ("resin", "Resin Corp", "US", LEI, ""),
    ("resin", "Polymer Ltd", "CN", "", "sales@polymer.example"),
    ("power", "Kansai Grid", "JP", "", ""),
]


def fill(book, *, supply=SUPPLY, sites=SITES, needs=NEEDS):
    sheet = book["supply"]
    for row in range(2, sheet.max_row + 1):
        key = sheet.cell(row=row, column=1).value
        if key in supply:
            sheet.cell(row=row, column=3, value=supply[key])
    for name, rows in (("sites", sites), ("needs", needs)):
        sheet = book[name]
        for r in range(2, sheet.max_row + 1):
            for c in range(1, 6):
                sheet.cell(row=r, column=c).value = None
        for r, values in enumerate(rows, start=2):
            for c, value in enumerate(values, start=1):
                sheet.cell(row=r, column=c, value=value or None)
    return book


def assert_saved(invitation):
    invitation.refresh_from_db()
    assert invitation.status == InvitationStatus.ANSWERED
    node = Node.objects.select_related("entity__ultimate_parent").get(pk=invitation.node_id)
    assert (node.kind, node.name_ja, node.name_en, node.country) == (
        "part",
        "人工呼吸器用バルブ",
        "Ventilator valve",
        "JP",
    )
    assert (node.has_bcp, node.recovery_hours, node.inventory_days) == (True, 48, 30)
    assert node.certification_declared
    assert node.certification_text == SUPPLY["certification_text"]
    assert node.disclosure == "partial"
    assert node.entity.corporate_number == CORP_A
    assert node.entity.ultimate_parent.name_ja == "ホールディングスA"
    assert sorted((s.name, s.country, s.kind) for s in node.sites.all()) == sorted(
        [
            ("Osaka plant", "JP", "production"),
            ("Frankfurt DC", "DE", "data"),
            ("Taipei office", "TW", "office"),
        ]
    )
    rows = {}
    for need in node.needs.all():
        for p in need.provisions.select_related("provider__entity"):
            rows[(need.name, p.provider.name_for_inviter)] = p.provider
    assert set(rows) == {
        ("resin", "樹脂商事"),
        ("resin", "Resin Corp"),
        ("resin", "Polymer Ltd"),
        ("power", "Kansai Grid"),
    }
    assert rows[("resin", "樹脂商事")].country == "JP"
    assert rows[("resin", "樹脂商事")].entity.corporate_number == CORP_P
    assert rows[("resin", "Resin Corp")].entity.lei == LEI
    assert rows[("resin", "Resin Corp")].country == "US"
    assert rows[("resin", "Resin Corp")].disclosure == "none"  # opaque until it answers
    # The provider with an e-mail was invited as the invite page does: tier 2, under A.
    child = Invitation.objects.get(parent=invitation)
    assert (child.email, child.supplier_name, child.tier) == (
        "sales@polymer.example",
        "Polymer Ltd",
        2,
    )
    assert child.node == rows[("resin", "Polymer Ltd")]
    assert child.node.country == "CN"
    return node


@pytest.mark.django_db
def test_xlsx_round_trip(chain, django_capture_on_commit_callbacks):
    client = client_for(chain.user_a)
    book = download_book(client, chain.invitation)
    assert book.sheetnames[:4] == ["instructions", "supply", "sites", "needs"]
    assert book["lists"].sheet_state == "hidden"
    assert any(
        "ISO 3166" in (c.value or "") for row in book["instructions"].iter_rows() for c in row
    )
    validated = {str(dv.sqref) for dv in book["needs"].data_validations.dataValidation}
    assert any(ref.startswith("C2:") for ref in validated)  # provider country list
    imported(upload(client, chain.invitation, save(fill(book))))
    assert_saved(chain.invitation)
    assert [m.to for m in mail.outbox] == [["sales@polymer.example"]]
    assert LINK.search(mail.outbox[0].body)
    event = AuditEvent.objects.filter(action="supplychain.answers_imported").get()
    assert event.details["invited"] == 1

    # Download again: the workbook shows exactly what was filled.
    again = download_book(client, chain.invitation)
    supply = {
        again["supply"].cell(row=r, column=1).value: again["supply"].cell(row=r, column=3).value
        for r in range(2, again["supply"].max_row + 1)
    }
    for key, value in SUPPLY.items():
        assert (supply[key] or "") == value or supply[key] == value, key
    sites = [
        tuple(c.value or "" for c in row)
        for row in again["sites"].iter_rows(min_row=2, max_col=4)
        if any(c.value for c in row)
    ]
    assert sorted(sites) == sorted(SITES)
    needs = [
        tuple(c.value or "" for c in row)
        for row in again["needs"].iter_rows(min_row=2, max_col=5)
        if any(c.value for c in row)
    ]
    expected = [n if not n[4] else (n[0], n[1], "", "", n[4]) for n in NEEDS]
    assert sorted(needs) == sorted(expected)

    # Uploading the same file again invites nobody twice and changes nothing.
    mail.outbox.clear()
    imported(upload(client, chain.invitation, save(again)))
    assert mail.outbox == []
    assert Invitation.objects.filter(parent=chain.invitation).count() == 1
    assert_saved(chain.invitation)


def csv_rows(data: bytes) -> list[dict]:
    text = data.decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def csv_bytes(rows: list[dict], *, encoding="utf-8-sig") -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=offline.CSV_COLUMNS)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in offline.CSV_COLUMNS})
    return out.getvalue().encode(encoding)


def filled_csv_rows(rows: list[dict]) -> list[dict]:
    out = []
    for row in rows:
        if row["section"] == "supply":
            value = SUPPLY[row["field"]]
            out.append({**row, "value": str(value)})
    for site in SITES:
        out.append({"section": "sites", **dict(zip(offline.SITES_COLUMNS, site, strict=True))})
    for need in NEEDS:
        out.append({"section": "needs", **dict(zip(offline.NEEDS_COLUMNS, need, strict=True))})
    return out


@pytest.mark.django_db
def test_csv_round_trip(chain, django_capture_on_commit_callbacks):
    client = client_for(chain.user_a)
    response = client.get(url(chain.invitation, "csv"))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response.content.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads it as UTF-8
    rows = csv_rows(response.content)
    assert [r["field"] for r in rows if r["section"] == "supply"] == list(offline.SUPPLY_KEYS)
    response = upload(
        client,
        chain.invitation,
        csv_bytes(filled_csv_rows(rows)),
        name="answers.csv",
    )
    imported(response)
    assert_saved(chain.invitation)
    assert [m.to for m in mail.outbox] == [["sales@polymer.example"]]
    # Download again and upload unchanged (Shift_JIS, as Japanese Excel saves CSV): no change.
    again = client.get(url(chain.invitation, "csv")).content
    rows = csv_rows(again)
    assert {r["provider_name"] for r in rows if r["section"] == "needs"} == {n[1] for n in NEEDS}
    mail.outbox.clear()
    response = upload(
        client,
        chain.invitation,
        csv_bytes(rows, encoding="cp932"),
        name="answers.csv",
    )
    imported(response)
    assert mail.outbox == []
    assert_saved(chain.invitation)


def test_csv_quotes_formula_like_values_and_reads_them_back():
    data = offline.build_csv(
        {
            "supply": {"name_ja": "=HYPERLINK(1)", "kind": "ict"},
            "sites": [],
            "needs": [{"need": "+power", "provider_name": "@grid"}],
        }
    )
    text = data.decode("utf-8-sig")
    for quoted in ("'=HYPERLINK(1)", "'+power", "'@grid"):
        assert quoted in text
    sections, errors = offline._read_csv(data)
    assert errors.items == []
    names = [row[2].value for row in sections["supply"][1:] if row[0].value == "name_ja"]
    assert names == ["=HYPERLINK(1)"]
    assert sections["needs"][1][1].value == "@grid"


def test_xlsx_text_starting_with_equals_is_not_a_formula():
    data = offline.build_xlsx(
        {"supply": {"name_ja": "=1+1", "kind": "ict"}, "sites": [], "needs": []}
    )
    sections, errors = offline._read_xlsx(data)
    assert errors.items == []  # no "formulas are not accepted"
    values = {row[0].value: row[2].value for row in sections["supply"][1:]}
    assert values["name_ja"] == "=1+1"


# --- Refusals: each names its cell and writes nothing -----------------------------------------


def state(invitation) -> tuple:
    node = Node.objects.get(pk=invitation.node_id)
    return (
        Node.objects.count(),
        Entity.objects.count(),
        Need.objects.count(),
        Provision.objects.count(),
        Site.objects.count(),
        Invitation.objects.count(),
        AuditEvent.objects.count(),
        Invitation.objects.get(pk=invitation.pk).status,
        node.name_ja,
        node.updated_at,
    )


def set_cell(sheet, ref, value):
    def change(book):
        book[sheet][ref] = value

    return change


def set_supply(key, value):
    def change(book):
        sheet = book["supply"]
        row = offline.SUPPLY_KEYS.index(key) + 2
        assert sheet.cell(row=row, column=1).value == key
        sheet.cell(row=row, column=3).value = value

    return change


def too_many_rows(book):
    sheet = book["needs"]
    for r in range(2, offline.max_rows() + 3):
        sheet.cell(row=r, column=1, value="power")
        sheet.cell(row=r, column=2, value=f"Provider {r}")


def delete_sheet(name):
    def change(book):
        del book[name]

    return change


def both(*changes):
    def change(book):
        for c in changes:
            c(book)

    return change


BOOK_ERRORS = [
    (
        "bad country",
        set_cell("needs", "C3", "XX"),
        ["needs!C3: country 'XX' is not an ISO 3166 code"],
    ),
    ("site country", set_cell("sites", "B4", "Japan"), ["sites!B4: country 'JAPAN' is not an ISO"]),
    (
        "formula",
        set_supply("recovery_hours", "=24*2"),
        ["supply!C10: formulas are not accepted"],
    ),
    ("not a number", set_supply("recovery_hours", "two days"), ["supply!C10: 'two days' is not"]),
    ("negative", set_supply("inventory_days", -1), ["supply!C11: enter a whole number"]),
    ("date as name", set_supply("name_ja", dt.datetime(2026, 1, 2)), ["supply!C3: expected text"]),
    ("disclosure", set_supply("disclosure", "some"), ["supply!C14: 'some' is not one of"]),
    ("yes/no", set_supply("has_bcp", "maybe"), ["supply!C9: 'maybe' is not yes or no"]),
    ("required name", set_supply("name_ja", None), ["supply!C3: the name is required"]),
    ("corporate number", set_supply("corporate_number", "1234567890123"), ["supply!C6: "]),
    ("lei", set_supply("lei", "SHORT"), ["supply!C7: an LEI has 20 letters"]),
    ("provider id", set_cell("needs", "D2", "ABC"), ["needs!D2: 'ABC' is neither"]),
    ("email", set_cell("needs", "E2", "not-an-address"), ["needs!E2: 'not-an-address' is not"]),
    ("provider without need", set_cell("needs", "A3", None), ["needs!A3: the need is required"]),
    ("duplicate provider", set_cell("needs", "B3", "樹脂商事"), ["needs!B3: the provider"]),
    ("outside columns", set_cell("needs", "H2", "note"), ["needs!H2: a value outside"]),
    ("missing sheet", delete_sheet("sites"), ["The sheet 'sites' is missing."]),
    ("renamed header", set_cell("needs", "B1", "supplier"), ["needs!B1: the header should be"]),
    ("unknown field", set_cell("supply", "A5", "colour"), ["supply!A5: unknown field 'colour'"]),
    ("too many rows", too_many_rows, ["needs!502: too many rows"]),
    (
        "error value",
        set_supply("recovery_hours", "#REF!"),
        ["supply!C10: the cell holds an error value"],
    ),
    (
        "every error at once",
        both(
            set_cell("needs", "C3", "XX"),
            set_supply("has_bcp", "maybe"),
            set_supply("name_ja", "=A1"),
        ),
        ["supply!C3: formulas are not accepted", "supply!C9: 'maybe'", "needs!C3: country 'XX'"],
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "messages"), [c[1:] for c in BOOK_ERRORS], ids=[c[0] for c in BOOK_ERRORS]
)
def test_workbook_errors_name_the_cell_and_write_nothing(
    chain, django_capture_on_commit_callbacks, change, messages
):
    client = client_for(chain.user_a)
    book = fill(download_book(client, chain.invitation))
    change(book)
    before = state(chain.invitation)
    errors = refused(upload(client, chain.invitation, save(book)))
    for message in messages:
        assert any(e.startswith(message) for e in errors), (message, errors)
    assert state(chain.invitation) == before
    assert mail.outbox == []


def rezip(data: bytes, *, replace=None, add=None) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            content = source.read(item)
            if replace and item.filename in replace:
                content = replace[item.filename](content)
            target.writestr(item.filename, content)
        for name, content in (add or {}).items():
            target.writestr(name, content)
    return out.getvalue()


def macro_enabled(data: bytes) -> bytes:
    return rezip(
        data,
        replace={
            "[Content_Types].xml": lambda c: c.replace(
                offline.XLSX_MAIN.encode(), b"application/vnd.ms-excel.sheet.macroEnabled.main+xml"
            )
        },
    )


def with_vba(data: bytes) -> bytes:
    return rezip(data, add={"xl/vbaProject.bin": b"\x00" * 64})


def zip_bomb(data: bytes) -> bytes:
    return rezip(data, add={"xl/media/padding.bin": b"0" * (offline.MAX_UNPACKED_BYTES + 1)})


FILE_ERRORS = [
    (
        "too large",
        lambda d: d + b"\0" * offline.max_upload_bytes(),
        "answers.xlsx",
        "larger than the limit of 2.0\xa0MB",
    ),
    ("xlsm by name", lambda d: d, "answers.xlsm", "Macro-enabled"),
    ("xlsm content named xlsx", macro_enabled, "answers.xlsx", "Macro-enabled workbooks"),
    ("vba project", with_vba, "answers.xlsx", "contains macros"),
    ("zip bomb", zip_bomb, "answers.xlsx", "too large once unpacked"),
    ("text named xlsx", lambda d: b"section,field\n", "answers.xlsx", "not an Excel workbook"),
    ("workbook named csv", lambda d: d, "answers.csv", "not a text (CSV) file"),
    ("broken zip", lambda d: d[:200], "answers.xlsx", "not a readable Excel workbook"),
    ("old xls", lambda d: offline.OLE_MAGIC + b"\0" * 100, "answers.xlsx", "old-format"),
    ("other type", lambda d: d, "answers.pdf", "Upload the questionnaire as an .xlsx or .csv"),
    ("binary csv", lambda d: b"a\x00b", "answers.csv", "not a text (CSV) file"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("mangle", "name", "message"), [c[1:] for c in FILE_ERRORS], ids=[c[0] for c in FILE_ERRORS]
)
def test_unacceptable_files_are_refused(chain, mangle, name, message):
    client = client_for(chain.user_a)
    data = mangle(save(fill(download_book(client, chain.invitation))))
    before = state(chain.invitation)
    errors = refused(upload(client, chain.invitation, data, name=name))
    assert any(message in e for e in errors), errors
    assert state(chain.invitation) == before


def base_csv(client, invitation) -> list[dict]:
    return filled_csv_rows(csv_rows(client.get(url(invitation, "csv")).content))


CSV_ERRORS = [
    (
        "line numbers count the lines of multi-line text",
        lambda rows: (
            rows[11].update(value="ISO 27001\nJP-123"),
            rows[-1].update(provider_country="XX"),
        ),
        "line 22, column J (provider_country): country 'XX' is not an ISO 3166 code",
    ),
    (
        "errors of reading and of values together",
        lambda rows: (rows[-2].update(section="extras"), rows[-1].update(provider_country="XX")),
        (
            "line 20, column A (section): unknown section 'extras'",
            "line 21, column J (provider_country): country 'XX'",
        ),
    ),
    (
        "bad country",
        lambda rows: rows[-1].update(provider_country="XX"),
        "line 21, column J (provider_country): country 'XX' is not an ISO 3166 code",
    ),
    (
        "unknown section",
        lambda rows: rows[-1].update(section="extras"),
        "line 21, column A (section): unknown section 'extras'",
    ),
    (
        "column of another section",
        lambda rows: rows[0].update(site_name="Osaka"),
        "line 2, column D (site_name): this column is not used in the section 'supply'",
    ),
    (
        "wrong type",
        lambda rows: rows[8].update(value="soon"),
        "line 10, column C (value): 'soon' is not a whole number",
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "message"), [c[1:] for c in CSV_ERRORS], ids=[c[0] for c in CSV_ERRORS]
)
def test_csv_errors_name_line_and_column_and_write_nothing(chain, change, message):
    client = client_for(chain.user_a)
    rows = base_csv(client, chain.invitation)
    change(rows)
    before = state(chain.invitation)
    errors = refused(upload(client, chain.invitation, csv_bytes(rows), name="answers.csv"))
    for expected in (message,) if isinstance(message, str) else message:
        assert any(e.startswith(expected) for e in errors), errors
    assert state(chain.invitation) == before


@pytest.mark.django_db
def test_csv_missing_column_and_too_many_rows(chain):
    client = client_for(chain.user_a)
    header = ",".join(c for c in offline.CSV_COLUMNS if c != "provider_email")
    errors = refused(upload(client, chain.invitation, (header + "\n").encode(), name="a.csv"))
    assert "line 1: the column 'provider_email' is missing" in errors
    rows = [{"section": "needs", "need": "power", "provider_name": f"P{i}"} for i in range(1600)]
    errors = refused(upload(client, chain.invitation, csv_bytes(rows), name="a.csv"))
    assert any("too many rows" in e for e in errors)


# --- Who may use the pages --------------------------------------------------------------------


@pytest.mark.django_db
def test_only_those_who_may_answer_see_the_offline_pages(world, chain):
    other_org = Organisation.objects.create(
        name_ja="他社", name_en="Other", category=Category.IT_VENDOR
    )
    other = make_user("other-vendor", other_org, Role.APPLICANT_ADMIN)
    data = offline.build_csv(offline.snapshot(chain.invitation))
    for user in (world.outsider, world.admin, other):  # the campaign owner only reads answers
        client = client_for(user)
        for what in ("", "xlsx", "csv"):
            assert client.get(url(chain.invitation, what)).status_code == 404
        file = io.BytesIO(data)
        file.name = "a.csv"
        assert client.post(url(chain.invitation), {"file": file}).status_code == 404
    anonymous = Client()
    assert anonymous.get(url(chain.invitation, "xlsx")).status_code == 404
    assert anonymous.get(url(chain.unbound, "xlsx")).status_code == 404
    owner_page = client_for(chain.user_a).get(url(chain.invitation))
    assert owner_page.status_code == 200
    assert b"questionnaire.xlsx" in owner_page.content
    # The answer and response pages link to it.
    answer = client_for(chain.user_a).get(f"/supply/responses/{chain.invitation.pk}/answer/")
    assert url(chain.invitation).encode() in answer.content


@pytest.mark.django_db
def test_link_holder_without_account_answers_offline_but_cannot_invite(chain):
    client = Client()
    assert client.get(f"/supply/i/{chain.unbound_token}/").status_code == 200
    book = fill(download_book(client, chain.unbound))
    before = state(chain.unbound)
    errors = refused(upload(client, chain.unbound, save(book)))
    assert any(
        e.startswith("needs!E4: inviting suppliers needs a registered organisation") for e in errors
    ), errors
    assert state(chain.unbound) == before
    book = fill(book, needs=[(*n[:4], "") for n in NEEDS])
    imported(upload(client, chain.unbound, save(book)))
    chain.unbound.refresh_from_db()
    assert chain.unbound.status == InvitationStatus.ANSWERED
    assert chain.unbound.node.needs.count() == 2


@pytest.mark.django_db
def test_upload_still_checks_csrf(chain):
    client = Client(enforce_csrf_checks=True)
    client.force_login(chain.user_a)
    file = io.BytesIO(offline.build_csv(offline.snapshot(chain.invitation)))
    file.name = "a.csv"
    response = client.post(url(chain.invitation), {"file": file})
    assert response.status_code == 403
    assert Invitation.objects.get(pk=chain.invitation.pk).status == InvitationStatus.INVITED
