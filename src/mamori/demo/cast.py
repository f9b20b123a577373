"""The demo's fictitious organisations: everything invented in the demo — assessments,
certificates, hosts, survey answers, supply chains, hearing notes — belongs to one of these.

Every name says so in both languages (「（架空）」, "(fictitious)"), so that nobody opening the demo
takes an outcome for a real company's. The real working group's roster is loaded as well, as a
roster, with nothing invented attached to it (``builder.load_working_group``); a test checks that
no fictitious name is on it.
"""

from __future__ import annotations

from dataclasses import dataclass

from mamori.organisations.models import Category

MARK_JA = "（架空）"
MARK_EN = "(fictitious)"


@dataclass(frozen=True)
class Fictitious:
    key: str  # the demo users' user-name prefix, the hosts' domain
    name_ja: str
    name_en: str
    category: str = Category.OTHER

    def __post_init__(self):
        if not (self.name_ja.endswith(MARK_JA) and self.name_en.endswith(MARK_EN)):
            raise ValueError(f"{self.key}: a fictitious name says so in both languages")


# The scheme itself: a certification body with two assessors and the scheme owner's secretariat.
CERTIFICATION_BODY = Fictitious(
    "cb",
    "守り認証株式会社（架空）",
    "Mamori Certification Co., Ltd. (fictitious)",
    Category.CERTIFICATION_BODY,
)
SECRETARIAT = Fictitious(
    "secretariat", "サイバー衛生制度事務局（架空）", "Cyber Hygiene Scheme Secretariat (fictitious)"
)

# A supervisor reading the sector's aggregated figures (the observer role).
SUPERVISOR = Fictitious(
    "supervisor",
    "みなと金融監督局（架空）",
    "Minato Financial Supervisory Office (fictitious)",
    Category.GOVERNMENT,
)

# Applicants: financial institutions of four kinds and two IT vendors, with demo users.
KOHAKU_BANK = Fictitious(
    "kohaku",
    "株式会社こはく銀行（架空）",
    "Kohaku Bank, Ltd. (fictitious)",
    Category.BANK,
)
RURI_SHINKIN = Fictitious(
    "ruri",
    "るり信用金庫（架空）",
    "Ruri Shinkin Bank (fictitious)",
    Category.SHINKIN_BANK,
)
HISUI_SECURITIES = Fictitious(
    "hisui",
    "ひすい証券株式会社（架空）",
    "Hisui Securities Co., Ltd. (fictitious)",
    Category.SECURITIES,
)
SANGO_LIFE = Fictitious(
    "sango",
    "さんご生命保険株式会社（架空）",
    "Sango Life Insurance Company (fictitious)",
    Category.INSURER,
)
MENOU_SYSTEMS = Fictitious(
    "menou",
    "めのうシステムズ株式会社（架空）",
    "Menou Systems Co., Ltd. (fictitious)",
    Category.IT_VENDOR,
)
SUISHO_IS = Fictitious(
    "suisho",
    "すいしょう情報サービス株式会社（架空）",
    "Suisho Information Services Co., Ltd. (fictitious)",
    Category.IT_VENDOR,
)

APPLICANTS = (KOHAKU_BANK, RURI_SHINKIN, HISUI_SECURITIES, SANGO_LIFE, MENOU_SYSTEMS, SUISHO_IS)
WITH_USERS = (CERTIFICATION_BODY, SECRETARIAT, SUPERVISOR, *APPLICANTS)


def is_fictitious(name_ja: str, name_en: str) -> bool:
    return name_ja.endswith(MARK_JA) and name_en.endswith(MARK_EN)
