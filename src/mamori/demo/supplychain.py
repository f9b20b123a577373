"""Supply-chain demo: two scenarios of issue 4, built through the survey services.

(a) Japanese banks' ICT. Seven Bank and Rakuten Bank (demo organisations with users) survey the
suppliers of their critical services — core banking, ATM network, internet banking, the Zengin
connection — Tier 1 the system vendors of the working group (NTT DATA, NEC, Hitachi, BIPROGY) and
the clouds (AWS, Microsoft, Google, Sakura), Tier 2 and 3 their data centres, carriers, power
grids and hardware.

(b) The medical-device case of the Japanese survey: the scheme secretariat surveys ventilator,
ECMO, dialysis and CHDF manufacturers (fictitious demo companies) and, through them, Tier-2 to
Tier-4 part suppliers across countries — sensors, motors, pumps, hollow fibres, resins,
semiconductors — with their days of inventory.

Everything goes through ``mamori.supplychain.services``: ``create_service``, ``create_campaign``,
``invite`` (by the campaign owner for Tier 1, by the bound respondent deeper), ``bind`` for
organisations already in Mamori, ``claim_organisation`` for those that are not, ``save_answers``
and ``decline``. Two things the services do not do are done on the models, both demo only:

- an invitation is made *overdue* by moving its due date into the past (as the main demo moves
  certificates into the past);
- a supplier that two respondents name is *one* node: the survey creates a node per invitation,
  so the second respondent's need is linked to the node the first one invited (what an analyst
  reconciling the chain does). This is what makes the hidden convergences visible.

The analysis of each scenario's exported graph finds hidden convergences (two ATM vendors on one
banknote-module maker, two clouds on one power grid, two ventilator makers on one flow-sensor
maker, two ECMO makers on one hollow-fibre maker, two membrane makers on one resin), single-country
needs (both Zengin lines in Japan, both CDNs in the US, both membrane makers in Japan, both MCU
fabs in Taiwan) and single points of failure. Loading is idempotent: once the surveys exist,
nothing is created again.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from mamori.accounts.models import User
from mamori.organisations.access import Access
from mamori.organisations.models import EDITOR_ROLES, Membership, Organisation, Role
from mamori.supplychain import analysis, graph, services
from mamori.supplychain.models import (
    Campaign,
    Invitation,
    InvitationStatus,
    Need,
    Node,
    Provision,
)

SITE_URL = "http://127.0.0.1:8000"
SECRETARIAT = "Cyber Hygiene Scheme Secretariat (demo)"  # builder.SCHEME_OWNER[1]
BANK_SURVEY = "ICTサプライチェーン調査 2026（デモ） / ICT supply-chain survey 2026 (demo)"
MEDICAL_SURVEY = (
    "医療機器サプライチェーン調査 2026（デモ） / Medical-device supply-chain survey 2026 (demo)"
)
OVERDUE_DAYS = 6

ISMAP = "ISMAP 登録、ISO/IEC 27001 認証、SOC 2 Type II 報告書（デモ）"
ISO13485 = "ISO 13485 認証（医療機器の品質マネジメント）、証明書番号はデモ"


@dataclass
class Supplier:
    """One invitation and, when answered, the supplier's answers; ``children`` are the suppliers
    it invites itself, ``links`` the needs it shares with a node invited elsewhere (by ref)."""

    ref: str
    need: str
    name_ja: str
    name_en: str
    country: str
    state: str = "answered"  # answered, invited, overdue, declined
    org: str = ""  # name_en of an organisation in Mamori; "" claims a new one when answered
    kind: str = "ict"
    disclosure: str = "full"
    certification: str = ""
    bcp: bool | None = True
    recovery_hours: int | None = None
    inventory_days: int | None = None
    sites: list[tuple[str, str, str]] = field(default_factory=list)
    named: list[tuple[str, list[str]]] = field(default_factory=list)
    links: list[tuple[str, str]] = field(default_factory=list)
    children: list[Supplier] = field(default_factory=list)


@dataclass
class Service:
    key: str
    name_ja: str
    name_en: str
    rto_hours: int
    rpo_hours: int
    substitutability: str
    exit_plan: str
    suppliers: list[Supplier]
    criticality: str = "critical"
    reliance: str = "full"


@dataclass
class Survey:
    scenario: str
    owner: str  # organisation name_en
    actor: str  # username of an administrator (or the scheme owner)
    title: str
    services: list[Service]
    deadline_days: int = 30


S = Supplier

SEVEN_BANK = Survey(
    scenario="banks",
    owner="Seven Bank, Ltd.",
    actor="sevenbank-admin",
    title=BANK_SURVEY,
    services=[
        Service(
            "core",
            "勘定系システム",
            "Core banking",
            2,
            0,
            "none",
            "委託先変更は 3 年計画。データ移行手順を年 1 回検証（デモ）。",
            [
                S(
                    "7-nttdata",
                    "勘定系システムの開発・運用",
                    "株式会社NTTデータ",
                    "NTT DATA Corporation",
                    "JP",
                    org="NTT DATA Corporation",
                    recovery_hours=2,
                    sites=[
                        ("data", "東京（メインセンター）", "JP"),
                        ("data", "大阪（バックアップ）", "JP"),
                    ],
                    named=[("保守要員", ["NTTデータ・ビジネス・システムズ"])],
                    children=[
                        S(
                            "7-fujitsu",
                            "メインフレーム・サーバー機器",
                            "富士通株式会社",
                            "Fujitsu Limited",
                            "JP",
                            org="Fujitsu Limited",
                            disclosure="partial",
                            recovery_hours=24,
                            sites=[("production", "石川（サーバー工場）", "JP")],
                            children=[
                                S(
                                    "7-tsmc",
                                    "プロセッサ（半導体）",
                                    "台湾積体電路製造（TSMC）",
                                    "TSMC",
                                    "TW",
                                    state="invited",
                                    kind="part",
                                ),
                            ],
                        ),
                        S(
                            "7-dc-tokyo",
                            "データセンター設備",
                            "首都圏データセンター株式会社（デモ）",
                            "Shutoken Data Centre K.K. (demo)",
                            "JP",
                            recovery_hours=4,
                            sites=[("data", "東京都三鷹市", "JP")],
                            links=[("受電（首都圏）", "7-tepco")],
                            children=[
                                S(
                                    "7-ntteast",
                                    "通信回線",
                                    "東日本電信電話株式会社",
                                    "NTT East",
                                    "JP",
                                    disclosure="partial",
                                ),
                            ],
                        ),
                        S(
                            "7-dc-osaka",
                            "データセンター設備",
                            "関西データセンター株式会社（デモ）",
                            "Kansai Data Centre K.K. (demo)",
                            "JP",
                            recovery_hours=4,
                            sites=[("data", "大阪府堺市", "JP")],
                            children=[
                                S(
                                    "7-kepco",
                                    "受電（関西）",
                                    "関西電力送配電株式会社",
                                    "Kansai Transmission and Distribution",
                                    "JP",
                                    state="overdue",
                                ),
                            ],
                        ),
                    ],
                ),
            ],
        ),
        Service(
            "atm",
            "ATMネットワーク",
            "ATM network",
            4,
            0,
            "hard",
            "ATM 2 機種を併用。片方の機種が止まっても縮退運転（デモ）。",
            [
                S(
                    "7-nec",
                    "ATM 端末・保守",
                    "日本電気株式会社",
                    "NEC Corporation",
                    "JP",
                    org="NEC Corporation",
                    recovery_hours=8,
                    children=[
                        S(
                            "7-banknote",
                            "紙幣還流ユニット",
                            "丙メカトロ株式会社（デモ）",
                            "Hei Mechatronics K.K. (demo)",
                            "JP",
                            kind="part",
                            disclosure="partial",
                            inventory_days=45,
                            sites=[("production", "埼玉県（組立）", "JP")],
                            children=[
                                S(
                                    "7-sensor",
                                    "紙幣識別センサー",
                                    "Penang Optosensor Sdn. Bhd. (demo)",
                                    "Penang Optosensor Sdn. Bhd. (demo)",
                                    "MY",
                                    state="overdue",
                                    kind="part",
                                ),
                            ],
                        ),
                    ],
                ),
                S(
                    "7-hitachi",
                    "ATM 端末・保守",
                    "株式会社日立製作所",
                    "Hitachi, Ltd.",
                    "JP",
                    org="Hitachi, Ltd.",
                    disclosure="partial",
                    recovery_hours=8,
                    links=[("紙幣還流ユニット", "7-banknote")],
                ),
            ],
        ),
        Service(
            "ib",
            "インターネットバンキング",
            "Internet banking",
            6,
            1,
            "medium",
            "マルチクラウド構成（AWS と Azure）。切替手順書あり（デモ）。",
            [
                S(
                    "7-aws",
                    "クラウド基盤",
                    "アマゾン ウェブ サービス ジャパン合同会社（東京リージョン）",
                    "Amazon Web Services Japan G.K. (Tokyo region)",
                    "JP",
                    org="Amazon Web Services Japan G.K.",
                    certification=ISMAP,
                    recovery_hours=4,
                    sites=[("data", "東京リージョン", "JP")],
                    children=[
                        S(
                            "7-tepco",
                            "受電（首都圏）",
                            "東京電力パワーグリッド株式会社",
                            "TEPCO Power Grid, Inc.",
                            "JP",
                            recovery_hours=24,
                            sites=[("production", "千葉・東京エリア送配電網", "JP")],
                        ),
                    ],
                ),
                S(
                    "7-azure",
                    "クラウド基盤",
                    "日本マイクロソフト株式会社（東日本リージョン）",
                    "Microsoft Japan Co., Ltd. (Japan East)",
                    "JP",
                    org="Microsoft Japan Co., Ltd.",
                    certification=ISMAP,
                    recovery_hours=4,
                    sites=[("data", "東日本リージョン", "JP")],
                    links=[("受電（首都圏）", "7-tepco")],
                ),
            ],
        ),
        Service(
            "zengin",
            "全銀システム接続",
            "Zengin payments connection",
            1,
            0,
            "none",
            "代替手段なし。全銀ネットの業務継続計画に依存（デモ）。",
            [
                S(
                    "7-zengin",
                    "全銀システム（資金決済）",
                    "一般社団法人全国銀行資金決済ネットワーク",
                    "Japanese Banks' Payment Clearing Network (Zengin-Net)",
                    "JP",
                    state="invited",
                ),
                S(
                    "7-line-ntt",
                    "全銀ネット接続回線",
                    "NTTコミュニケーションズ株式会社",
                    "NTT Communications Corporation",
                    "JP",
                    recovery_hours=2,
                ),
                S(
                    "7-line-kddi",
                    "全銀ネット接続回線",
                    "KDDI株式会社",
                    "KDDI Corporation",
                    "JP",
                    state="declined",
                ),
            ],
        ),
    ],
)

RAKUTEN_BANK = Survey(
    scenario="banks",
    owner="Rakuten Bank, Ltd.",
    actor="rakuten-admin",
    title=BANK_SURVEY,
    services=[
        Service(
            "core",
            "勘定系システム",
            "Core banking",
            4,
            0,
            "hard",
            "パッケージ保守契約の終了 2 年前に移行先を選定（デモ）。",
            [
                S(
                    "r-biprogy",
                    "勘定系パッケージ・保守",
                    "BIPROGY株式会社",
                    "BIPROGY Inc.",
                    "JP",
                    org="BIPROGY Inc.",
                    disclosure="partial",
                    recovery_hours=6,
                    named=[("データベース製品", ["日本オラクル株式会社"])],
                ),
                S(
                    "r-google",
                    "ホスティング",
                    "グーグル合同会社（Google Cloud 東京）",
                    "Google G.K. (Google Cloud Tokyo)",
                    "JP",
                    org="Google G.K.",
                    certification=ISMAP,
                    recovery_hours=4,
                    sites=[("data", "東京リージョン", "JP")],
                    children=[
                        S(
                            "r-ix",
                            "インターネット接続",
                            "大手町 IX 接続サービス株式会社（デモ）",
                            "Otemachi IX Services K.K. (demo)",
                            "JP",
                            disclosure="none",
                            bcp=False,
                            sites=[("production", "東京都千代田区大手町", "JP")],
                        ),
                    ],
                ),
                S(
                    "r-sakura",
                    "ホスティング",
                    "さくらインターネット株式会社",
                    "SAKURA internet Inc.",
                    "JP",
                    certification=ISMAP,
                    recovery_hours=12,
                    sites=[("data", "北海道石狩市", "JP"), ("data", "東京都", "JP")],
                    links=[("インターネット接続", "r-ix")],
                ),
            ],
        ),
        Service(
            "ib",
            "インターネットバンキング",
            "Internet banking",
            6,
            1,
            "medium",
            "CDN は 2 社併用。クラウドは AWS 東京・大阪（デモ）。",
            [
                S(
                    "r-aws",
                    "クラウド基盤",
                    "アマゾン ウェブ サービス ジャパン合同会社（東京・大阪リージョン）",
                    "Amazon Web Services Japan G.K. (Tokyo and Osaka regions)",
                    "JP",
                    org="Amazon Web Services Japan G.K.",
                    certification=ISMAP,
                    recovery_hours=4,
                    sites=[("data", "東京リージョン", "JP"), ("data", "大阪リージョン", "JP")],
                ),
                S(
                    "r-akamai",
                    "CDN・DDoS 対策",
                    "Akamai Technologies",
                    "Akamai Technologies",
                    "US",
                    disclosure="partial",
                    recovery_hours=1,
                ),
                S(
                    "r-cloudflare",
                    "CDN・DDoS 対策",
                    "Cloudflare, Inc.",
                    "Cloudflare, Inc.",
                    "US",
                    state="overdue",
                ),
            ],
        ),
    ],
)

MEDICAL = Survey(
    scenario="medical",
    owner=SECRETARIAT,
    actor="owner",
    title=MEDICAL_SURVEY,
    services=[
        Service(
            "vent",
            "人工呼吸器の供給",
            "Supply of ventilators",
            72,
            0,
            "hard",
            "国内 2 社と輸入 1 社。平時在庫と増産計画を年 1 回確認（デモ）。",
            [
                S(
                    "m-kou",
                    "人工呼吸器の製造",
                    "甲医科工業株式会社（デモ）",
                    "Kou Medical Industries K.K. (demo)",
                    "JP",
                    kind="part",
                    certification=ISO13485,
                    inventory_days=30,
                    sites=[("production", "静岡県", "JP")],
                    children=[
                        S(
                            "m-flow",
                            "流量センサー",
                            "Flowsens AG（デモ）",
                            "Flowsens AG (demo)",
                            "CH",
                            kind="part",
                            disclosure="partial",
                            inventory_days=60,
                            sites=[("production", "Zürich", "CH")],
                            children=[
                                S(
                                    "m-mems",
                                    "MEMS センサーチップ",
                                    "Dresden MEMS Foundry GmbH (demo)",
                                    "Dresden MEMS Foundry GmbH (demo)",
                                    "DE",
                                    state="invited",
                                    kind="part",
                                ),
                            ],
                        ),
                        S(
                            "m-blower",
                            "ブロワーモーター",
                            "Motorwerk Schwaben GmbH（デモ）",
                            "Motorwerk Schwaben GmbH (demo)",
                            "DE",
                            kind="part",
                            inventory_days=40,
                            sites=[("production", "Stuttgart", "DE")],
                        ),
                        S(
                            "m-mcu-a",
                            "制御用マイコン",
                            "Hsinchu Microcontrollers Co. (demo)",
                            "Hsinchu Microcontrollers Co. (demo)",
                            "TW",
                            kind="part",
                            disclosure="partial",
                            inventory_days=20,
                        ),
                        S(
                            "m-mcu-b",
                            "制御用マイコン",
                            "Tainan Semiconductor Corp. (demo)",
                            "Tainan Semiconductor Corp. (demo)",
                            "TW",
                            state="overdue",
                            kind="part",
                        ),
                    ],
                ),
                S(
                    "m-otsu",
                    "人工呼吸器の製造",
                    "乙メディカル株式会社（デモ）",
                    "Otsu Medical K.K. (demo)",
                    "JP",
                    kind="part",
                    disclosure="partial",
                    inventory_days=21,
                    sites=[("production", "埼玉県", "JP")],
                    links=[("流量センサー", "m-flow")],
                    named=[("バッテリー", ["リチウムイオン電池メーカー（非開示）"])],
                ),
                S(
                    "m-hei",
                    "保守部品（輸入）",
                    "丙ヘルスケア合同会社（輸入販売、デモ）",
                    "Hei Healthcare G.K. (importer, demo)",
                    "US",
                    state="overdue",
                    kind="part",
                ),
            ],
        ),
        Service(
            "ecmo",
            "ECMO の供給",
            "Supply of ECMO systems",
            72,
            0,
            "none",
            "人工肺（膜）は代替困難。国内在庫の融通計画あり（デモ）。",
            [
                S(
                    "m-tei",
                    "ECMO の製造",
                    "丁メディカル株式会社（デモ）",
                    "Tei Medical K.K. (demo)",
                    "JP",
                    kind="part",
                    certification=ISO13485,
                    inventory_days=25,
                    sites=[("production", "神奈川県", "JP")],
                    children=[
                        S(
                            "m-pmp",
                            "PMP 中空糸膜（人工肺）",
                            "Wuppertal Membranes GmbH（デモ）",
                            "Wuppertal Membranes GmbH (demo)",
                            "DE",
                            kind="part",
                            disclosure="partial",
                            inventory_days=90,
                            sites=[("production", "Wuppertal", "DE")],
                            children=[
                                S(
                                    "m-pmp-resin",
                                    "PMP 樹脂",
                                    "己化学工業株式会社（デモ）",
                                    "Ki Chemical Industries K.K. (demo)",
                                    "JP",
                                    kind="part",
                                    inventory_days=120,
                                    sites=[("production", "山口県", "JP")],
                                ),
                            ],
                        ),
                        S(
                            "m-pump",
                            "遠心ポンプ",
                            "Basel Pumps AG（デモ）",
                            "Basel Pumps AG (demo)",
                            "CH",
                            state="declined",
                            kind="part",
                        ),
                    ],
                ),
                S(
                    "m-bo",
                    "ECMO の製造",
                    "戊工業株式会社（デモ）",
                    "Bo Industries K.K. (demo)",
                    "JP",
                    kind="part",
                    disclosure="partial",
                    inventory_days=14,
                    sites=[("production", "愛知県", "JP")],
                    links=[("PMP 中空糸膜（人工肺）", "m-pmp")],
                ),
            ],
        ),
        Service(
            "dialysis",
            "透析装置の供給",
            "Supply of dialysis equipment",
            48,
            0,
            "hard",
            "ダイアライザーは国内 2 社。原料樹脂の調達先を確認中（デモ）。",
            [
                S(
                    "m-kanoe",
                    "透析装置・ダイアライザーの製造",
                    "庚メディカル株式会社（デモ）",
                    "Kanoe Medical K.K. (demo)",
                    "JP",
                    kind="part",
                    certification=ISO13485,
                    inventory_days=35,
                    sites=[("production", "滋賀県", "JP")],
                    children=[
                        S(
                            "m-fibre-a",
                            "中空糸膜（ポリスルホン）",
                            "辛マテリアル株式会社（デモ）",
                            "Shin Materials K.K. (demo)",
                            "JP",
                            kind="part",
                            inventory_days=60,
                            sites=[("production", "宮崎県", "JP")],
                            children=[
                                S(
                                    "m-psu",
                                    "ポリスルホン樹脂",
                                    "Gulf Coast Polymers LLC (demo)",
                                    "Gulf Coast Polymers LLC (demo)",
                                    "US",
                                    kind="part",
                                    disclosure="partial",
                                    inventory_days=75,
                                    sites=[("production", "Texas", "US")],
                                    children=[
                                        S(
                                            "m-bpa",
                                            "ビスフェノール A（原料）",
                                            "Rotterdam Aromatics B.V. (demo)",
                                            "Rotterdam Aromatics B.V. (demo)",
                                            "NL",
                                            state="invited",
                                            kind="part",
                                        ),
                                    ],
                                ),
                            ],
                        ),
                        S(
                            "m-fibre-b",
                            "中空糸膜（ポリスルホン）",
                            "壬ファイバー株式会社（デモ）",
                            "Jin Fibre K.K. (demo)",
                            "JP",
                            kind="part",
                            inventory_days=45,
                            sites=[("production", "岡山県", "JP")],
                            links=[("ポリスルホン樹脂", "m-psu")],
                        ),
                    ],
                ),
                S(
                    "m-mizunoe",
                    "透析装置・ダイアライザーの製造",
                    "癸ダイアリシス株式会社（デモ）",
                    "Mizunoe Dialysis K.K. (demo)",
                    "JP",
                    state="declined",
                    kind="part",
                ),
            ],
        ),
        Service(
            "chdf",
            "CHDF 回路・血液浄化器の供給",
            "Supply of CHDF circuits and haemofilters",
            48,
            0,
            "hard",
            "回路チューブは東南アジア 2 拠点。在庫 30 日分を目標（デモ）。",
            [
                S(
                    "m-chdf",
                    "CHDF 回路・ヘモフィルターの製造",
                    "子メディカル株式会社（デモ）",
                    "Ne Medical K.K. (demo)",
                    "JP",
                    kind="part",
                    disclosure="partial",
                    inventory_days=18,
                    sites=[("production", "福岡県", "JP")],
                    links=[("中空糸膜（ポリスルホン）", "m-fibre-a")],
                    children=[
                        S(
                            "m-tube-my",
                            "血液回路チューブ",
                            "Johor Medical Moulding Sdn. Bhd. (demo)",
                            "Johor Medical Moulding Sdn. Bhd. (demo)",
                            "MY",
                            kind="part",
                            inventory_days=30,
                        ),
                        S(
                            "m-tube-th",
                            "血液回路チューブ",
                            "Rayong Medical Plastics Co., Ltd. (demo)",
                            "Rayong Medical Plastics Co., Ltd. (demo)",
                            "TH",
                            state="invited",
                            kind="part",
                        ),
                    ],
                ),
            ],
        ),
    ],
)

SURVEYS = [SEVEN_BANK, RAKUTEN_BANK, MEDICAL]
SCENARIOS = {"banks": [SEVEN_BANK, RAKUTEN_BANK], "medical": [MEDICAL]}
SCENARIO_NAMES = {"banks": gettext_lazy("banks' ICT"), "medical": gettext_lazy("medical devices")}


@dataclass
class Result:
    created: bool
    campaigns: int
    nodes: int
    invitations: dict[str, int]
    findings: dict[str, dict[str, int]]

    def summary(self) -> str:
        parts = "; ".join(
            _("%(scenario)s: %(convergence)d hidden convergences, %(country)d single-country needs")
            % {
                "scenario": SCENARIO_NAMES[scenario],
                "convergence": counts["hidden_convergence"],
                "country": counts["single_country"],
            }
            for scenario, counts in self.findings.items()
        )
        if self.created:
            line = _(
                "Supply-chain demo loaded: %(campaigns)d surveys, %(nodes)d nodes, "
                "%(invitations)d invitations (%(answered)d answered, %(overdue)d overdue, "
                "%(declined)d declined); %(findings)s."
            )
        else:
            line = _(
                "Supply-chain demo already loaded: %(campaigns)d surveys, %(nodes)d nodes, "
                "%(invitations)d invitations (%(answered)d answered, %(overdue)d overdue, "
                "%(declined)d declined); %(findings)s."
            )
        return line % {
            "campaigns": self.campaigns,
            "nodes": self.nodes,
            "invitations": sum(self.invitations.values()),
            "answered": self.invitations.get("answered", 0),
            "overdue": self.invitations.get("overdue", 0),
            "declined": self.invitations.get("declined", 0),
            "findings": parts,
        }


def campaigns_of(scenario: str) -> list[Campaign]:
    return [
        campaign for survey in SCENARIOS[scenario] if (campaign := _existing(survey)) is not None
    ]


def scenario_graph(scenario: str) -> dict:
    """The scenario's surveys exported and merged into one exchange document (node keys are
    random per node, so the banks' graphs do not clash; ``from_dict`` would say if they did).
    Suppliers bound to one organisation are one entity across both banks' graphs."""
    nodes, requirements = [], []
    for campaign in campaigns_of(scenario):
        document = services.export_graph(campaign)
        nodes.extend(document["nodes"])
        requirements.extend(document["requirements"])
    document = {"schema": graph.SCHEMA, "nodes": nodes, "requirements": requirements}
    graph.from_dict(document)
    return document


def analyse_scenario(scenario: str) -> dict:
    return analysis.analyse(graph.from_dict(scenario_graph(scenario)))


def _existing(survey: Survey) -> Campaign | None:
    return Campaign.objects.filter(owner__name_en=survey.owner, title=survey.title).first()


def build() -> Result:
    """Build the surveys not built yet (all in one transaction). A survey whose owner or
    acting user is missing (the main demo data not loaded) is left out."""
    created = False
    with transaction.atomic():
        for survey in SURVEYS:
            if _existing(survey) is not None:
                continue
            owner = Organisation.objects.filter(name_en=survey.owner).first()
            actor = User.objects.filter(username=survey.actor).first()
            if owner is None or actor is None:
                continue
            _build_survey(survey, owner, actor)
            created = True
    return _result(created)


def _result(created: bool) -> Result:
    campaigns = [c for survey in SURVEYS if (c := _existing(survey)) is not None]
    invitations = Invitation.objects.filter(campaign__in=campaigns)
    today = timezone.localdate()
    counts = {
        "answered": invitations.filter(status=InvitationStatus.ANSWERED).count(),
        "declined": invitations.filter(status=InvitationStatus.DECLINED).count(),
        "overdue": invitations.overdue(today).count(),
    }
    counts["invited"] = (
        invitations.filter(status=InvitationStatus.INVITED).count() - counts["overdue"]
    )
    findings = {}
    for scenario in SCENARIOS:
        if not campaigns_of(scenario):
            continue
        result = analyse_scenario(scenario)
        findings[scenario] = {
            "hidden_convergence": len(result["hidden_convergence"]),
            "single_country": len(result["single_country"]),
        }
    nodes = Node.objects.filter(campaign__in=campaigns).count() + sum(
        c.services.count() for c in campaigns
    )
    return Result(created, len(campaigns), nodes, counts, findings)


# --- Building ---------------------------------------------------------------------------------


def _build_survey(survey: Survey, owner: Organisation, actor: User) -> Campaign:
    access = Access.for_user(actor)
    today = timezone.localdate()
    site_url = getattr(settings, "MAMORI_SITE_URL", "") or SITE_URL
    service_nodes = {}
    for service in survey.services:
        service_nodes[service.key] = services.create_service(
            actor,
            access,
            owner,
            name_ja=service.name_ja,
            name_en=service.name_en,
            criticality=service.criticality,
            rto_hours=service.rto_hours,
            rpo_hours=service.rpo_hours,
            reliance=service.reliance,
            substitutability=service.substitutability,
            exit_plan=service.exit_plan,
        )
    campaign = services.create_campaign(
        actor,
        access,
        owner,
        title=survey.title,
        services=list(service_nodes.values()),
        deadline=today + dt.timedelta(days=survey.deadline_days),
        site_url=site_url,
    )
    built: dict[str, Invitation] = {}
    pending_links: list[tuple[Invitation, str, str]] = []

    def add(supplier: Supplier, for_node: Node, inviter, parent: Invitation | None) -> None:
        sent = services.invite(
            inviter,
            Access.for_user(inviter),
            campaign=campaign,
            for_node=for_node,
            need=supplier.need,
            supplier_name=supplier.name_ja,
            country=supplier.country,
            email=f"{supplier.ref}@example.jp",
            parent=parent,
            site_url=site_url,
        )
        invitation = sent.invitation
        built[supplier.ref] = invitation
        if supplier.state == "declined":
            services.decline(None, invitation)
            return
        if supplier.state == "overdue":
            due = today - dt.timedelta(days=OVERDUE_DAYS)
            Invitation.objects.filter(pk=invitation.pk).update(due_on=due)
            return
        if supplier.state == "invited":
            return
        respondent = _respond(supplier, invitation)
        pending_links.extend((invitation, need, ref) for need, ref in supplier.links)
        invitation.refresh_from_db()
        for child in supplier.children:
            add(child, invitation.node, respondent, invitation)

    for service in survey.services:
        for supplier in service.suppliers:
            add(supplier, service_nodes[service.key], actor, None)
    for invitation, need, ref in pending_links:
        # The same supplier named by two respondents is one node of the chain.
        need_row, _created = Need.objects.get_or_create(node=invitation.node, name=need)
        Provision.objects.get_or_create(need=need_row, provider=built[ref].node)
    return campaign


def _respond(supplier: Supplier, invitation: Invitation) -> User:
    """Bind (or claim) the supplier's organisation and save its answers; returns the user who
    answered, who then invites the supplier's own suppliers."""
    if supplier.org:
        organisation = Organisation.objects.get(name_en=supplier.org)
        user = _respondent_user(organisation)
        services.bind(user, Access.for_user(user), invitation, organisation)
    else:
        user = services.claim_organisation(
            invitation,
            name_ja=supplier.name_ja,
            name_en=supplier.name_en,
            corporate_number="",
            country=supplier.country,
            username=_username(supplier.ref),
            email=f"{supplier.ref}@example.jp",
            password=secrets.token_urlsafe(18),
        )
        # Nobody signs in as a demo supplier: the random password is not kept.
        user.set_unusable_password()
        user.save(update_fields=["password"])
    answers = {
        "kind": supplier.kind,
        "name_ja": supplier.name_ja,
        "name_en": supplier.name_en,
        "country": supplier.country,
        "disclosure": supplier.disclosure,
        "has_bcp": supplier.bcp,
        "recovery_hours": supplier.recovery_hours,
        "inventory_days": supplier.inventory_days,
        "certification_declared": bool(supplier.certification),
        "certification_text": supplier.certification,
    }
    services.save_answers(
        user,
        invitation,
        answers=answers,
        sites=[services.SiteRow(kind, name, country) for kind, name, country in supplier.sites],
        needs=[services.NeedRow(need, names) for need, names in supplier.named],
    )
    return user


def _username(ref: str) -> str:
    base = "supply-" + re.sub(r"[^a-z0-9-]", "", ref.lower())
    username, number = base, 1
    while User.objects.filter(username__iexact=username).exists():
        number += 1
        username = f"{base}-{number}"
    return username


def _respondent_user(organisation: Organisation) -> User:
    """A member who may answer for the organisation: an existing demo user, or a contributor
    account without a password made for the demo."""
    membership = (
        Membership.objects.filter(organisation=organisation, role__in=EDITOR_ROLES)
        .select_related("user")
        .order_by("pk")
        .first()
    )
    if membership is not None:
        return membership.user
    slug = re.sub(r"[^a-z0-9]+", "-", organisation.name_en.lower()).strip("-")[:30]
    # No password: an unusable one, nobody signs in as this account.
    user = User.objects.create_user(
        username=_username(slug),
        email=f"supply@{slug}.example.jp",
        display_name=f"{organisation.name_ja} 回答担当",
    )
    Membership.objects.create(user=user, organisation=organisation, role=Role.APPLICANT_CONTRIBUTOR)
    return user
