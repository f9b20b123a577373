"""Supply-chain demo: two scenarios of issue 4 on fictitious organisations, built through the
survey services.

(a) Banks' ICT. Kohaku Bank and Ruri Shinkin Bank survey the suppliers of their critical
services — core banking, the ATM network, internet banking, the interbank payments connection —
Tier 1 their system vendors and clouds, Tier 2 and 3 data centres, carriers, power grids,
hardware and chips.

(b) The medical-device case, after the Japanese survey: the scheme secretariat surveys two or
three manufacturers per device — ventilators, ventilator consumables (breathing circuits and
filters), ECMO, dialysis equipment, CHDF haemofilters and circuits — and, through them, their
part suppliers across countries, with days of inventory. Tiers count from the manufacturer: the
manufacturers are Tier 0, their direct suppliers Tier 1 (``TierOrigin.MANUFACTURER``).

Every organisation here is fictitious (its name says so); nothing is attached to the real
working group's organisations, and ``_respond`` refuses to. What the chains have in common —
two alternatives that depend on one upstream supplier, alternatives all in one country, sole
sources, undisclosed tiers — is only data here: every finding the pages show is computed by the
analysis from these answers (tests/demo/test_demo_supplychain.py checks what it finds).

Everything goes through ``mamori.supplychain.services``: ``create_service``, ``create_campaign``,
``invite`` (by the campaign owner for the first tier, by the bound respondent deeper), ``bind``
for organisations already in Mamori, ``claim_organisation`` for those that are not,
``save_answers``, ``decline`` and ``record_hearing``. Two things the services do not do are done
on the models, both demo only:

- an invitation is made *overdue* by moving its due date into the past (as the main demo moves
  certificates into the past);
- a supplier that two respondents name is *one* node: the survey creates a node per invitation,
  so the second respondent's need is linked to the node the first one invited (what an analyst
  reconciling the chain does).

Loading is idempotent: once the surveys exist, nothing is created again.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from mamori.accounts.models import User
from mamori.demo import cast
from mamori.organisations.access import Access
from mamori.organisations.models import EDITOR_ROLES, Membership, Organisation, WorkingGroup
from mamori.supplychain import analysis, graph, services
from mamori.supplychain.models import (
    Campaign,
    Invitation,
    InvitationStatus,
    Need,
    Node,
    Provision,
    TierOrigin,
)

SECRETARIAT = cast.SECRETARIAT.name_en
BANK_SURVEY = "ICTサプライチェーン調査 2026（デモ） / ICT supply-chain survey 2026 (demo)"
MEDICAL_SURVEY = (
    "医療機器サプライチェーン調査 2026（デモ） / Medical-device supply-chain survey 2026 (demo)"
)
OVERDUE_DAYS = 6

ISMAP = "ISMAP 登録、ISO/IEC 27001 認証、SOC 2 Type II 報告書（架空の登録番号）"
ISO13485 = "ISO 13485 認証（医療機器の品質マネジメント）、証明書番号は架空"


@dataclass
class Supplier:
    """One invitation and, when answered, the supplier's answers; ``children`` are the suppliers
    it invites itself, ``links`` the needs it shares with a node invited elsewhere (by ref).
    ``org`` names (in English) an organisation already in Mamori, which binds the invitation;
    without it the supplier registers its own organisation when it answers."""

    ref: str
    need: str
    name_ja: str
    name_en: str
    country: str
    state: str = "answered"  # answered, invited, overdue, declined
    org: str = ""
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
    tier_origin: str = TierOrigin.SERVICE


@dataclass
class Hearing:
    """Notes of a hearing the survey owner held with one supplier (by ref), ``days_ago``."""

    ref: str
    days_ago: int
    participants: str
    notes: str
    follow_ups: str = ""


@dataclass
class Survey:
    scenario: str
    owner: str  # organisation name_en
    actor: str  # username of an administrator (or the scheme owner)
    title: str
    services: list[Service]
    hearings: list[Hearing] = field(default_factory=list)
    deadline_days: int = 30


S = Supplier

# Organisations that a later invitation binds (registered by an earlier answer).
AMAGUMO = "Amagumo Cloud K.K. (fictitious)"
SOYOKAZE = "Soyokaze Telecom Co., Ltd. (fictitious)"
KINOTO = "Kinoto Medical Co., Ltd. (fictitious)"
TSUCHINOE = "Tsuchinoe Industries Co., Ltd. (fictitious)"
KANOTO = "Kanoto Dialysis Co., Ltd. (fictitious)"

KOHAKU_BANK = Survey(
    scenario="banks",
    owner=cast.KOHAKU_BANK.name_en,
    actor="kohaku-admin",
    title=BANK_SURVEY,
    services=[
        Service(
            "core",
            "勘定系システム",
            "Core banking",
            2,
            0,
            "none",
            "委託先の変更には 3 年を見込む。データ移行手順を年 1 回検証する（デモ）。",
            [
                S(
                    "k-menou",
                    "勘定系システムの開発・運用",
                    cast.MENOU_SYSTEMS.name_ja,
                    cast.MENOU_SYSTEMS.name_en,
                    "JP",
                    org=cast.MENOU_SYSTEMS.name_en,
                    recovery_hours=2,
                    sites=[
                        ("data", "東京（メインセンター）", "JP"),
                        ("data", "大阪（バックアップセンター）", "JP"),
                    ],
                    named=[("保守要員", ["めのうビジネスサービス株式会社（架空）"])],
                    children=[
                        S(
                            "k-akane",
                            "サーバー機器",
                            "あかね電機株式会社（架空）",
                            "Akane Electric Co., Ltd. (fictitious)",
                            "JP",
                            disclosure="partial",
                            recovery_hours=24,
                            sites=[("production", "石川県（サーバー工場）", "JP")],
                            children=[
                                S(
                                    "k-formosa",
                                    "プロセッサ（半導体）",
                                    "フォルモサ・ロジック半導体（架空）",
                                    "Formosa Logic Semiconductor Corp. (fictitious)",
                                    "TW",
                                    state="invited",
                                    kind="part",
                                ),
                            ],
                        ),
                        S(
                            "k-dc-east",
                            "データセンター設備",
                            "みどり台データセンター株式会社（架空）",
                            "Midoridai Data Centre K.K. (fictitious)",
                            "JP",
                            recovery_hours=4,
                            sites=[("data", "東京都", "JP")],
                            links=[("受電（首都圏）", "k-grid-east")],
                            children=[
                                S(
                                    "k-soyokaze",
                                    "通信回線",
                                    "そよかぜ通信株式会社（架空）",
                                    SOYOKAZE,
                                    "JP",
                                    disclosure="partial",
                                ),
                            ],
                        ),
                        S(
                            "k-dc-west",
                            "データセンター設備",
                            "なにわデータセンター株式会社（架空）",
                            "Naniwa Data Centre K.K. (fictitious)",
                            "JP",
                            recovery_hours=4,
                            sites=[("data", "大阪府", "JP")],
                            children=[
                                S(
                                    "k-grid-west",
                                    "受電（関西）",
                                    "なにわ送配電株式会社（架空）",
                                    "Naniwa Power Grid Co., Ltd. (fictitious)",
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
            "ATM は 2 機種を併用する（デモ）。",
            [
                S(
                    "k-yukimi",
                    "ATM 端末・保守",
                    "ゆきみ精機株式会社（架空）",
                    "Yukimi Seiki Co., Ltd. (fictitious)",
                    "JP",
                    recovery_hours=8,
                    children=[
                        S(
                            "k-hinoki",
                            "紙幣還流ユニット",
                            "ひのきメカトロ株式会社（架空）",
                            "Hinoki Mechatronics Co., Ltd. (fictitious)",
                            "JP",
                            kind="part",
                            disclosure="partial",
                            inventory_days=45,
                            sites=[("production", "埼玉県（組立）", "JP")],
                            children=[
                                S(
                                    "k-penang",
                                    "紙幣識別センサー",
                                    "ペナン・オプトセンサー社（架空）",
                                    "Penang Optosensor Sdn. Bhd. (fictitious)",
                                    "MY",
                                    state="overdue",
                                    kind="part",
                                ),
                            ],
                        ),
                    ],
                ),
                S(
                    "k-kasumi",
                    "ATM 端末・保守",
                    "かすみ端末株式会社（架空）",
                    "Kasumi Terminals Co., Ltd. (fictitious)",
                    "JP",
                    disclosure="partial",
                    recovery_hours=8,
                    links=[("紙幣還流ユニット", "k-hinoki")],
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
            "2 つのクラウドで冗長構成とし、切替手順書を整備する（デモ）。",
            [
                S(
                    "k-amagumo",
                    "クラウド基盤",
                    "あまぐもクラウド株式会社（架空）",
                    AMAGUMO,
                    "JP",
                    certification=ISMAP,
                    recovery_hours=4,
                    sites=[("data", "東京リージョン", "JP")],
                    children=[
                        S(
                            "k-grid-east",
                            "受電（首都圏）",
                            "東都送配電株式会社（架空）",
                            "Toto Power Grid Co., Ltd. (fictitious)",
                            "JP",
                            recovery_hours=24,
                            sites=[("production", "首都圏の送配電網", "JP")],
                        ),
                    ],
                ),
                S(
                    "k-sorano",
                    "クラウド基盤",
                    "そらのクラウド株式会社（架空）",
                    "Sorano Cloud Inc. (fictitious)",
                    "JP",
                    certification=ISMAP,
                    recovery_hours=4,
                    sites=[("data", "千葉県", "JP")],
                    links=[("受電（首都圏）", "k-grid-east")],
                ),
            ],
        ),
        Service(
            "payments",
            "資金決済ネットワーク接続",
            "Interbank payments connection",
            1,
            0,
            "none",
            "代替手段はない（デモ）。",
            [
                S(
                    "k-clearing",
                    "資金決済ネットワーク",
                    "銀行間決済ネットワーク（架空）",
                    "Interbank Clearing Network (fictitious)",
                    "JP",
                    state="invited",
                ),
                S(
                    "k-line-soyokaze",
                    "決済ネットワーク接続回線",
                    "そよかぜ通信株式会社（架空）",
                    SOYOKAZE,
                    "JP",
                    org=SOYOKAZE,
                    recovery_hours=2,
                ),
                S(
                    "k-line-hayate",
                    "決済ネットワーク接続回線",
                    "はやてネットワークス株式会社（架空）",
                    "Hayate Networks Co., Ltd. (fictitious)",
                    "JP",
                    state="declined",
                ),
            ],
        ),
    ],
    hearings=[
        Hearing(
            "k-yukimi",
            12,
            "ゆきみ精機（架空） 保守サービス部長、品質保証課長",
            "紙幣還流ユニットの調達先と保守部品の在庫を確認した。紙幣還流ユニットは 1 社から"
            "調達しており、その部品の調達先については照会中とのこと。保守部品の在庫は本部倉庫に"
            "集約されている。（デモ）",
            "紙幣識別センサーの調達先の回答を督促し、結果を 2 週間以内に共有いただく。",
        ),
    ],
)

RURI_SHINKIN = Survey(
    scenario="banks",
    owner=cast.RURI_SHINKIN.name_en,
    actor="ruri-admin",
    title=BANK_SURVEY,
    services=[
        Service(
            "core",
            "勘定系システム",
            "Core banking",
            4,
            0,
            "hard",
            "共同利用型システム。契約終了の 2 年前に移行先を選定する（デモ）。",
            [
                S(
                    "r-suisho",
                    "勘定系システム（共同利用型）の運用・保守",
                    cast.SUISHO_IS.name_ja,
                    cast.SUISHO_IS.name_en,
                    "JP",
                    org=cast.SUISHO_IS.name_en,
                    disclosure="partial",
                    recovery_hours=6,
                    named=[("データベース製品", ["つるぎデータベース株式会社（架空）"])],
                ),
                S(
                    "r-amagumo",
                    "ホスティング",
                    "あまぐもクラウド株式会社（架空）",
                    AMAGUMO,
                    "JP",
                    org=AMAGUMO,
                    certification=ISMAP,
                    recovery_hours=4,
                    sites=[("data", "東京リージョン", "JP")],
                    children=[
                        S(
                            "r-minato-ix",
                            "インターネット接続",
                            "みなとIXサービス株式会社（架空）",
                            "Minato IX Services K.K. (fictitious)",
                            "JP",
                            disclosure="none",
                            bcp=False,
                            sites=[("production", "東京都港区", "JP")],
                        ),
                    ],
                ),
                S(
                    "r-kitakaze",
                    "ホスティング",
                    "きたかぜホスティング株式会社（架空）",
                    "Kitakaze Hosting K.K. (fictitious)",
                    "JP",
                    certification=ISMAP,
                    recovery_hours=12,
                    sites=[("data", "北海道", "JP"), ("data", "東京都", "JP")],
                    links=[("インターネット接続", "r-minato-ix")],
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
            "CDN は 2 社を併用する（デモ）。",
            [
                S(
                    "r-amagumo-ib",
                    "クラウド基盤",
                    "あまぐもクラウド株式会社（架空）",
                    AMAGUMO,
                    "JP",
                    org=AMAGUMO,
                    certification=ISMAP,
                    recovery_hours=4,
                    sites=[("data", "東京リージョン", "JP"), ("data", "大阪リージョン", "JP")],
                ),
                S(
                    "r-bayside",
                    "CDN・DDoS 対策",
                    "ベイサイド・エッジ・ネットワークス社（架空）",
                    "Bayside Edge Networks, Inc. (fictitious)",
                    "US",
                    disclosure="partial",
                    recovery_hours=1,
                ),
                S(
                    "r-redwood",
                    "CDN・DDoS 対策",
                    "レッドウッド CDN 社（架空）",
                    "Redwood CDN, Inc. (fictitious)",
                    "US",
                    state="overdue",
                ),
            ],
        ),
    ],
)

MANUFACTURER = TierOrigin.MANUFACTURER

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
            "平時の在庫と増産計画を年 1 回確認する（デモ）。",
            [
                S(
                    "m-kinoe",
                    "人工呼吸器の製造",
                    "甲医科工業株式会社（架空）",
                    "Kinoe Medical Industries Co., Ltd. (fictitious)",
                    "JP",
                    kind="part",
                    certification=ISO13485,
                    inventory_days=30,
                    sites=[("production", "静岡県", "JP")],
                    children=[
                        S(
                            "m-flowsens",
                            "流量センサー",
                            "フローセンス社（架空）",
                            "Flowsens AG (fictitious)",
                            "CH",
                            kind="part",
                            disclosure="partial",
                            inventory_days=60,
                            sites=[("production", "Zürich", "CH")],
                            children=[
                                S(
                                    "m-dresden",
                                    "MEMS センサーチップ",
                                    "ドレスデン MEMS ファウンドリー社（架空）",
                                    "Dresden MEMS Foundry GmbH (fictitious)",
                                    "DE",
                                    state="invited",
                                    kind="part",
                                ),
                            ],
                        ),
                        S(
                            "m-blower",
                            "ブロワーモーター",
                            "モーターヴェルク・シュヴァーベン社（架空）",
                            "Motorwerk Schwaben GmbH (fictitious)",
                            "DE",
                            kind="part",
                            inventory_days=40,
                            sites=[("production", "Stuttgart", "DE")],
                        ),
                        S(
                            "m-hsinchu",
                            "制御用マイコン",
                            "新竹マイクロコントローラー社（架空）",
                            "Hsinchu Microcontrollers Co., Ltd. (fictitious)",
                            "TW",
                            kind="part",
                            disclosure="partial",
                            inventory_days=20,
                        ),
                        S(
                            "m-tainan",
                            "制御用マイコン",
                            "台南セミコンダクター社（架空）",
                            "Tainan Semiconductor Corp. (fictitious)",
                            "TW",
                            state="overdue",
                            kind="part",
                        ),
                    ],
                ),
                S(
                    "m-kinoto",
                    "人工呼吸器の製造",
                    "乙メディカル株式会社（架空）",
                    KINOTO,
                    "JP",
                    kind="part",
                    disclosure="partial",
                    inventory_days=21,
                    sites=[("production", "埼玉県", "JP")],
                    links=[("流量センサー", "m-flowsens")],
                    named=[("バッテリー", ["リチウムイオン電池メーカー（社名非開示）"])],
                ),
                S(
                    "m-hinoe",
                    "保守部品の輸入販売",
                    "丙ヘルスケア合同会社（架空）",
                    "Hinoe Healthcare G.K. (fictitious)",
                    "US",
                    state="overdue",
                    kind="part",
                ),
            ],
            tier_origin=MANUFACTURER,
        ),
        Service(
            "vent-consumables",
            "人工呼吸器用消耗品（呼吸回路・フィルター）の供給",
            "Supply of ventilator consumables (breathing circuits and filters)",
            24,
            0,
            "hard",
            "医療機関の在庫は 2 週間分を目安とする（デモ）。",
            [
                S(
                    "m-hinoto",
                    "呼吸回路・フィルターの製造",
                    "丁メディカルサプライ株式会社（架空）",
                    "Hinoto Medical Supply Co., Ltd. (fictitious)",
                    "JP",
                    kind="part",
                    certification=ISO13485,
                    inventory_days=20,
                    sites=[("production", "群馬県", "JP")],
                    children=[
                        S(
                            "m-ulsan",
                            "フィルター用メルトブローン不織布",
                            "蔚山フィルトレーション社（架空）",
                            "Ulsan Filtration Media Co., Ltd. (fictitious)",
                            "KR",
                            kind="part",
                            inventory_days=25,
                            sites=[("production", "Ulsan", "KR")],
                            children=[
                                S(
                                    "m-lioncity",
                                    "ポリプロピレン樹脂",
                                    "ライオンシティ石油化学社（架空）",
                                    "Lion City Petrochemicals Pte. Ltd. (fictitious)",
                                    "SG",
                                    kind="part",
                                    disclosure="partial",
                                    inventory_days=40,
                                    sites=[("production", "Jurong Island", "SG")],
                                ),
                            ],
                        ),
                        S(
                            "m-johor",
                            "呼吸回路チューブ",
                            "ジョホール・メディカル・モールディング社（架空）",
                            "Johor Medical Moulding Sdn. Bhd. (fictitious)",
                            "MY",
                            kind="part",
                            inventory_days=30,
                            sites=[("production", "Johor Bahru", "MY")],
                        ),
                        S(
                            "m-kedah",
                            "呼吸回路チューブ",
                            "ケダ・メディカル・プラスチック社（架空）",
                            "Kedah Medical Plastics Sdn. Bhd. (fictitious)",
                            "MY",
                            state="invited",
                            kind="part",
                        ),
                    ],
                ),
                S(
                    "m-tsuchinoe",
                    "呼吸回路・フィルターの製造",
                    "戊工業株式会社（架空）",
                    TSUCHINOE,
                    "JP",
                    kind="part",
                    disclosure="partial",
                    inventory_days=15,
                    sites=[("production", "愛知県", "JP")],
                    links=[("フィルター用メルトブローン不織布", "m-ulsan")],
                ),
                S(
                    "m-kinoto-consumables",
                    "呼吸回路・フィルターの製造",
                    "乙メディカル株式会社（架空）",
                    KINOTO,
                    "JP",
                    org=KINOTO,
                    kind="part",
                    disclosure="partial",
                    inventory_days=10,
                    sites=[("production", "埼玉県", "JP")],
                    links=[("フィルター用メルトブローン不織布", "m-ulsan")],
                ),
            ],
            tier_origin=MANUFACTURER,
        ),
        Service(
            "ecmo",
            "ECMO の供給",
            "Supply of ECMO systems",
            72,
            0,
            "none",
            "国内在庫を医療機関の間で融通する計画がある（デモ）。",
            [
                S(
                    "m-tsuchinoto",
                    "ECMO の製造",
                    "己メディカル株式会社（架空）",
                    "Tsuchinoto Medical Co., Ltd. (fictitious)",
                    "JP",
                    kind="part",
                    certification=ISO13485,
                    inventory_days=25,
                    sites=[("production", "神奈川県", "JP")],
                    children=[
                        S(
                            "m-wuppertal",
                            "PMP 中空糸膜（人工肺）",
                            "ヴッパータール・メンブレン社（架空）",
                            "Wuppertal Membranes GmbH (fictitious)",
                            "DE",
                            kind="part",
                            disclosure="partial",
                            inventory_days=90,
                            sites=[("production", "Wuppertal", "DE")],
                            children=[
                                S(
                                    "m-yamabuki",
                                    "PMP 樹脂",
                                    "やまぶき化学工業株式会社（架空）",
                                    "Yamabuki Chemical Industries Co., Ltd. (fictitious)",
                                    "JP",
                                    kind="part",
                                    inventory_days=120,
                                    sites=[("production", "山口県", "JP")],
                                ),
                            ],
                        ),
                        S(
                            "m-basel",
                            "遠心ポンプ",
                            "バーゼル・ポンプ社（架空）",
                            "Basel Pumps AG (fictitious)",
                            "CH",
                            state="declined",
                            kind="part",
                        ),
                    ],
                ),
                S(
                    "m-kanoe",
                    "ECMO の製造",
                    "庚メディカル株式会社（架空）",
                    "Kanoe Medical Co., Ltd. (fictitious)",
                    "JP",
                    kind="part",
                    disclosure="partial",
                    inventory_days=14,
                    sites=[("production", "愛知県", "JP")],
                    links=[("PMP 中空糸膜（人工肺）", "m-wuppertal")],
                ),
            ],
            tier_origin=MANUFACTURER,
        ),
        Service(
            "dialysis",
            "透析装置・ダイアライザーの供給",
            "Supply of dialysis equipment and dialysers",
            48,
            0,
            "hard",
            "ダイアライザーの在庫は医療機関と卸で 1 か月分を目安とする（デモ）。",
            [
                S(
                    "m-kanoto",
                    "透析装置・ダイアライザーの製造",
                    "辛ダイアリシス株式会社（架空）",
                    KANOTO,
                    "JP",
                    kind="part",
                    certification=ISO13485,
                    inventory_days=35,
                    sites=[("production", "滋賀県", "JP")],
                    children=[
                        S(
                            "m-asagi",
                            "中空糸膜（ポリスルホン）",
                            "あさぎマテリアル株式会社（架空）",
                            "Asagi Materials Co., Ltd. (fictitious)",
                            "JP",
                            kind="part",
                            inventory_days=60,
                            sites=[("production", "宮崎県", "JP")],
                            children=[
                                S(
                                    "m-gulf",
                                    "ポリスルホン樹脂",
                                    "ガルフコースト・ポリマーズ社（架空）",
                                    "Gulf Coast Polymers LLC (fictitious)",
                                    "US",
                                    kind="part",
                                    disclosure="partial",
                                    inventory_days=75,
                                    sites=[("production", "Texas", "US")],
                                    children=[
                                        S(
                                            "m-rotterdam",
                                            "ビスフェノール A（原料）",
                                            "ロッテルダム・アロマティクス社（架空）",
                                            "Rotterdam Aromatics B.V. (fictitious)",
                                            "NL",
                                            state="invited",
                                            kind="part",
                                        ),
                                    ],
                                ),
                            ],
                        ),
                        S(
                            "m-moegi",
                            "中空糸膜（ポリスルホン）",
                            "もえぎファイバー株式会社（架空）",
                            "Moegi Fibre Co., Ltd. (fictitious)",
                            "JP",
                            kind="part",
                            inventory_days=45,
                            sites=[("production", "岡山県", "JP")],
                            links=[("ポリスルホン樹脂", "m-gulf")],
                        ),
                    ],
                ),
                S(
                    "m-mizunoe",
                    "透析装置・ダイアライザーの製造",
                    "壬メディカル株式会社（架空）",
                    "Mizunoe Medical Co., Ltd. (fictitious)",
                    "JP",
                    state="declined",
                    kind="part",
                ),
            ],
            tier_origin=MANUFACTURER,
        ),
        Service(
            "chdf",
            "CHDF 用血液浄化器・回路の供給",
            "Supply of CHDF haemofilters and circuits",
            48,
            0,
            "hard",
            "集中治療室での使用量を基に 30 日分の在庫を目標とする（デモ）。",
            [
                S(
                    "m-kanoto-chdf",
                    "CHDF 用血液浄化器（ヘモフィルター）の製造",
                    "辛ダイアリシス株式会社（架空）",
                    KANOTO,
                    "JP",
                    org=KANOTO,
                    kind="part",
                    inventory_days=18,
                    sites=[("production", "滋賀県", "JP")],
                    links=[("中空糸膜（ポリスルホン）", "m-asagi")],
                ),
                S(
                    "m-mizunoto",
                    "CHDF 用血液浄化器（ヘモフィルター）の製造",
                    "癸メディカル株式会社（架空）",
                    "Mizunoto Medical Co., Ltd. (fictitious)",
                    "JP",
                    kind="part",
                    certification=ISO13485,
                    inventory_days=21,
                    sites=[("production", "福岡県", "JP")],
                    links=[("中空糸膜（ポリスルホン）", "m-moegi")],
                    children=[
                        S(
                            "m-rayong",
                            "血液回路チューブ",
                            "ラヨーン・メディカル・プラスチック社（架空）",
                            "Rayong Medical Plastics Co., Ltd. (fictitious)",
                            "TH",
                            state="invited",
                            kind="part",
                        ),
                    ],
                ),
                S(
                    "m-tsuchinoe-chdf",
                    "CHDF 用血液浄化器（ヘモフィルター）の製造",
                    "戊工業株式会社（架空）",
                    TSUCHINOE,
                    "JP",
                    org=TSUCHINOE,
                    kind="part",
                    disclosure="partial",
                    inventory_days=12,
                    sites=[("production", "愛知県", "JP")],
                    links=[("中空糸膜（ポリスルホン）", "m-moegi")],
                ),
            ],
            tier_origin=MANUFACTURER,
        ),
    ],
    hearings=[
        Hearing(
            "m-kinoe",
            10,
            "甲医科工業（架空） 調達部長、品質保証課長",
            "流量センサーの調達について確認した。現行機種に採用している流量センサーは 1 社の"
            "製品で、他社品に切り替えるには評価と変更手続に約 9 か月かかるとの説明。"
            "流量センサーの安全在庫は 60 日分。（デモ）",
            "MEMS センサーチップの製造元について、流量センサーメーカーへの照会結果を 2 週間"
            "以内に共有いただく。",
        ),
        Hearing(
            "m-mizunoe",
            4,
            "壬メディカル（架空） 経営企画部長",
            "質問票への回答を辞退した理由を確認した。取引先名の開示には取引先の同意が必要で、"
            "同意の取得に時間がかかるとの説明。（デモ）",
            "1 か月後に同意の取得状況を再度確認する。",
        ),
    ],
)

SURVEYS = [KOHAKU_BANK, RURI_SHINKIN, MEDICAL]
SCENARIOS = {"banks": [KOHAKU_BANK, RURI_SHINKIN], "medical": [MEDICAL]}
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
    site_url = settings.SITE_URL  # MAMORI_SITE_URL, or the loopback address on the port served
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
            tier_origin=service.tier_origin,
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
            # As the supplier's browser would, holding the link.
            services.decline(None, invitation, link_key=secrets.token_urlsafe(16))
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
        if supplier.children and not invitation.organisation.identity_verified:
            # Its inviter vouches for it before it passes the survey on, so Mamori mails its
            # suppliers; registered suppliers with none of their own stay unverified.
            inviter = invitation.invited_by
            services.confirm_identity(inviter, Access.for_user(inviter), invitation.organisation_id)
        for child in supplier.children:
            add(child, invitation.node, respondent, invitation)

    for service in survey.services:
        for supplier in service.suppliers:
            add(supplier, service_nodes[service.key], actor, None)
    for invitation, need, ref in pending_links:
        # The same supplier named by two respondents is one node of the chain.
        need_row, _created = Need.objects.get_or_create(node=invitation.node, name=need)
        Provision.objects.get_or_create(need=need_row, provider=built[ref].node)
    for hearing in survey.hearings:
        services.record_hearing(
            actor,
            access,
            built[hearing.ref],
            held_on=today - dt.timedelta(days=hearing.days_ago),
            interviewer=actor.display_name,
            participants=hearing.participants,
            notes=hearing.notes,
            follow_ups=hearing.follow_ups,
        )
    return campaign


def _on_a_roster(organisation: Organisation) -> bool:
    return WorkingGroup.objects.filter(Q(members=organisation) | Q(convenor=organisation)).exists()


def _respond(supplier: Supplier, invitation: Invitation) -> User:
    """Bind (or claim) the supplier's organisation and save its answers; returns the user who
    answered, who then invites the supplier's own suppliers. Only fictitious organisations
    answer: nothing invented is attached to a real one. A registered supplier stays unverified
    (no corporate number: a made-up one could be a real company's), as on a live system until
    the scheme owner or its inviter confirms it."""
    link_key = secrets.token_urlsafe(16)  # the browser that opened the link
    if supplier.org:
        organisation = Organisation.objects.get(name_en=supplier.org)
        if _on_a_roster(organisation) or not cast.is_fictitious(
            organisation.name_ja, organisation.name_en
        ):
            raise ValueError(f"{supplier.ref}: only fictitious organisations answer in the demo")
        user = _respondent_user(organisation)
        services.bind(user, Access.for_user(user), invitation, organisation, link_key=link_key)
    else:
        if not cast.is_fictitious(supplier.name_ja, supplier.name_en):
            raise ValueError(f"{supplier.ref}: a supplier's name says it is fictitious")
        user = services.claim_organisation(
            invitation,
            name_ja=supplier.name_ja,
            name_en=supplier.name_en,
            corporate_number="",
            country=supplier.country,
            username=_username(supplier.ref),
            email=f"{supplier.ref}@example.jp",
            password=_throwaway_password(_username(supplier.ref), f"{supplier.ref}@example.jp"),
            link_key=link_key,
            require_corporate_number=False,
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


def _throwaway_password(username: str, email: str) -> str:
    """A random password the validators accept for this user: once in a great while a random
    one shares enough letters with the user name or address to be refused as too similar, and
    the demo must not fail on that (it is made unusable right after)."""
    probe = User(username=username, email=email, display_name=username)
    while True:
        password = secrets.token_urlsafe(18)
        try:
            validate_password(password, probe)
        except ValidationError:
            continue
        return password


def _username(ref: str) -> str:
    base = "supply-" + re.sub(r"[^a-z0-9-]", "", ref.lower())
    username, number = base, 1
    while User.objects.filter(username__iexact=username).exists():
        number += 1
        username = f"{base}-{number}"
    return username


def _respondent_user(organisation: Organisation) -> User:
    """The member who answers for an organisation already in Mamori: its first administrator or
    contributor (a demo applicant's, or the account that registered it in an earlier answer)."""
    membership = (
        Membership.objects.filter(organisation=organisation, role__in=EDITOR_ROLES)
        .select_related("user")
        .order_by("pk")
        .first()
    )
    if membership is None:
        raise ValueError(f"{organisation.name_en}: nobody may answer for it")
    return membership.user
