"""The governance mapping: the bundled file against the real catalogue, every problem of a broken
file reported with its line, and the coverage table's counts. No database: the mapping is pure."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mamori.catalogue.loader import load_catalogue
from mamori.core.controls import FIVE_CONTROLS
from mamori.reporting import mapping
from mamori.reporting.mapping import MappingError, coverage, load, rag_sources

CATALOGUE = Path(mapping.__file__).resolve().parents[1] / "catalogue" / "data" / "ce-jp-2026.1.yaml"


@pytest.fixture(scope="module")
def question_ids() -> frozenset[str]:
    return frozenset(question.qid for question in load_catalogue(CATALOGUE).questions)


@pytest.fixture(scope="module")
def bundled(question_ids) -> mapping.GovernanceMapping:
    return load(questions=question_ids)


# A small valid file: the five principles and six domains a file must have, in flow style so the
# line numbers in the tests below stay easy to count.
HEAD = """\
version: "t1"
source:
  documents:
    - {title: {ja: 規範, en: Code}, publisher: {ja: 英国政府, en: UK government}, published: "2025-04"}
  note: {ja: 言い換え, en: Paraphrased}
principles:
  - {key: A, label: {ja: リスク管理, en: Risk management}, sources: [metric:kev_open, metric:supplier_spof]}
  - {key: B, label: {ja: 戦略, en: Strategy}, sources: []}
  - {key: C, label: {ja: 人材, en: People}, sources: []}
  - {key: D, label: {ja: インシデント, en: Incidents}, sources: [question:A10.4]}
  - {key: E, label: {ja: 保証と監督, en: Assurance and oversight}, sources: [metric:board_review]}
"""
DOMAINS = """\
domains:
  - {key: governance, label: {ja: ガバナンス, en: Governance}}
  - {key: identification, label: {ja: 特定, en: Identification}}
  - {key: protection, label: {ja: 防御, en: Protection}}
  - {key: detection, label: {ja: 検知, en: Detection}}
  - {key: response_recovery, label: {ja: 対応・復旧, en: Response and recovery}}
  - {key: third_party, label: {ja: サードパーティ, en: Third parties}}
"""
SMALL_ITEMS = """\
items:
  - {id: PR-01, domain: protection, level: basic, label: {ja: 修正, en: Fixes}, sources: [control:firewalls, metric:kev_open]}
  - {id: PR-02, domain: protection, level: basic, label: {ja: KEV, en: KEV}, sources: [question:A6.9]}
  - {id: PR-03, domain: protection, level: desirable, label: {ja: 開発, en: Development}, sources: []}
  - id: GV-01
    domain: governance
    level: desirable
    label: {ja: 報告, en: Reporting}
    note: {ja: 注記, en: A note}
    sources: [metric:board_review]
  - {id: GV-02, domain: governance, level: basic, label: {ja: 責任者, en: Owner}, sources: [question:A10.1, control:malware_protection]}
"""
SMALL_QUESTIONS = {"A6.9", "A10.1", "A10.4"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mapping.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path, **kwargs) -> list[str]:
    with pytest.raises(MappingError) as caught:
        load(path, **kwargs)
    return caught.value.problems


# --- The bundled file ---------------------------------------------------------------------------


def test_bundled_file_loads_with_the_real_catalogues_question_ids(bundled):
    assert bundled.version == "2026.1"
    assert bundled.path == str(mapping.BUNDLED_PATH)
    assert [p.key for p in bundled.principles] == list(mapping.PRINCIPLE_KEYS)
    assert [d.key for d in bundled.domains] == list(mapping.DOMAIN_KEYS)


def test_bundled_file_names_both_documents_and_says_it_paraphrases(bundled):
    assert [(d.title.en, d.published) for d in bundled.documents] == [
        ("Cyber Governance Code of Practice", "2025-04"),
        ("Guidelines for Cybersecurity in the Financial Sector", "2024-10"),
    ]
    assert bundled.documents[1].publisher.ja == "金融庁"
    assert "paraphrase" in bundled.note.en
    assert "言い換え" in bundled.note.ja


def test_every_principle_and_every_domain_is_covered_and_both_levels_occur(bundled):
    for principle in bundled.principles:
        assert principle.sources, principle.key
        assert principle.rationale is not None
    for domain in bundled.domains:
        assert bundled.items_in(domain.key), domain.key
    assert {item.level for item in bundled.items} == {"basic", "desirable"}
    assert 25 <= len(bundled.items) <= 40


def test_bundled_file_shows_gaps_as_well_as_evidence(bundled):
    """Items Mamori cannot evidence stay in the file with no sources, so the pack shows them."""
    gaps = [item for item in bundled.items if not item.sources]
    assert gaps
    assert {item.level for item in gaps} == {"basic", "desirable"}
    gap_texts = " ".join(item.label("en") for item in gaps)
    for topic in ("penetration test", "SBOM", "exercises"):
        assert topic in gap_texts


def test_every_metric_and_control_informs_something(bundled):
    """A metric or control the mapping never cites would be collected but never reach the board."""
    cited = bundled.sources()
    assert {f"metric:{key}" for key in mapping.METRIC_KEYS} <= cited
    assert {f"control:{key}" for key in FIVE_CONTROLS} <= cited


def test_labels_in_japanese_and_english(bundled):
    risk = bundled.principle("A")
    assert (risk.label(), risk.label("ja"), risk.label("en")) == (
        "リスク管理",
        "リスク管理",
        "Risk management",
    )
    assert bundled.principle("D").label("en") == "Incident planning, response and recovery"
    assert bundled.domain("third_party").label("ja") == "サードパーティリスク管理"
    assert bundled.domain("third_party").label("en") == "Third-party risk management"
    for item in bundled.items:
        assert item.label("ja")
        assert item.label("en")
        assert item.label("ja") != item.label("en")
    with pytest.raises(ValueError, match="language must be one of ja, en"):
        risk.label("fr")


def test_loaded_objects_are_frozen(bundled):
    with pytest.raises(dataclasses.FrozenInstanceError):
        bundled.items[0].level = "desirable"  # type: ignore[misc]


# --- Broken files -------------------------------------------------------------------------------


def test_every_problem_is_reported_at_once_with_its_line(tmp_path):
    path = write(
        tmp_path,
        """\
version: 2026.1
owner: secretariat
source:
  documents:
    - {title: {ja: 規範, en: Code}, publisher: {ja: 英国政府}, published: "2025-04"}
  note: {ja: 言い換え, en: Paraphrased}
principles:
  - {key: A, label: {ja: リスク管理, en: Risk management}, sources: [metric:kev_open]}
  - {key: B, label: {ja: 戦略, en: ""}, sources: []}
  - {key: F, label: {ja: 謎, en: Mystery}, sources: []}
  - {key: D, label: {ja: インシデント, en: Incidents}, sources: metric:alerts_open}
  - {key: E, label: {ja: 保証と監督, en: Assurance}, sources: [metric:board_review]}
"""
        + DOMAINS  # lines 13-19
        + """\
items:
  - id: PR-01
    domain: protect
    level: required
    label: {ja: 修正, en: Fixes}
    sources:
      - kev_open
      - control:firewall
      - metric:kev_opened
      - question:A6.99
      - report:board_pack
      - metric:kev_open
      - metric:kev_open
  - id: PR-01
    domain: protection
    level: basic
    label: {ja: 二つ目}
    owner: ciso
""",
    )
    domains = ", ".join(mapping.DOMAIN_KEYS)
    controls = ", ".join(FIVE_CONTROLS)
    assert problems_of(path, questions=SMALL_QUESTIONS) == [
        f"{path}:1: 'version' must be text, e.g. \"2026.1\"",
        f"{path}:2: unknown key 'owner' in the mapping file",
        f"{path}:5: document 1 in 'source' 'publisher' needs a non-empty 'en' text",
        f"{path}:8: 'principles' lacks principle 'C'",
        f"{path}:9: principle 'B' 'label' needs a non-empty 'en' text",
        f"{path}:10: unknown principle 'F' (the Governance Code's are A, B, C, D, E)",
        f"{path}:11: principle 'D' 'sources' must be a list",
        f"{path}:22: item PR-01: unknown domain 'protect' (one of: {domains})",
        f"{path}:23: item PR-01: level 'required' must be basic or desirable",
        f"{path}:26: item PR-01: source 'kev_open' is not of the form kind:key",
        f"{path}:27: item PR-01: unknown control 'firewall' (one of: {controls})",
        f"{path}:28: item PR-01: unknown metric 'kev_opened'",
        f"{path}:29: item PR-01: unknown question 'A6.99' (not in the catalogue)",
        f"{path}:30: item PR-01: unknown source kind 'report' in 'report:board_pack' "
        "(one of: control, metric, question)",
        f"{path}:32: item PR-01: duplicate source 'metric:kev_open'",
        f"{path}:33: duplicate item id 'PR-01' (first on line 21)",
        f"{path}:33: item PR-01 lacks required key 'sources'",
        f"{path}:36: item PR-01 'label' needs a non-empty 'en' text",
        f"{path}:37: unknown key 'owner' in item PR-01",
    ]


def test_missing_domains_sections_and_wrong_types(tmp_path):
    path = write(
        tmp_path,
        HEAD  # lines 1-11
        + """\
domains:
  - {key: governance, label: {ja: ガバナンス, en: Governance, fr: Gouvernance}}
  - {key: governance, label: {ja: ガバナンス, en: Governance}}
  - {key: identify, label: {ja: 特定, en: Identification}}
  - just a word
items:
  - {id: "bad id", domain: detection, level: 1, label: {ja: 検知, en: Detection}, sources: [7]}
  - [not, a, mapping]
""",
    )
    assert problems_of(path) == [
        f"{path}:13: unknown language 'fr' in domain 'governance' 'label'",
        f"{path}:13: 'domains' lacks domain 'identification'",
        f"{path}:13: 'domains' lacks domain 'protection'",
        f"{path}:13: 'domains' lacks domain 'detection'",
        f"{path}:13: 'domains' lacks domain 'response_recovery'",
        f"{path}:13: 'domains' lacks domain 'third_party'",
        f"{path}:14: duplicate domain 'governance' (first on line 13)",
        f"{path}:15: unknown domain 'identify' (the FSA guideline's are {', '.join(mapping.DOMAIN_KEYS)})",
        f"{path}:16: a domain must be a mapping",
        f"{path}:18: item 1: id 'bad id' must be 1-32 letters, digits, '.', '_' or '-'",
        f"{path}:18: item 1: level 1 must be basic or desirable",
        f"{path}:18: item 1: source 7 must be text of the form kind:key",
        f"{path}:19: item 2 must be a mapping",
    ]


def test_a_file_that_is_not_a_mapping_or_lacks_sections(tmp_path):
    path = write(tmp_path, "- a list\n- not a mapping\n")
    assert problems_of(path) == [f"{path}:1: the mapping file must be a mapping"]
    path = write(tmp_path, 'version: "1"\n')
    assert problems_of(path) == [
        f"{path}:1: the mapping file lacks required key 'domains'",
        f"{path}:1: the mapping file lacks required key 'items'",
        f"{path}:1: the mapping file lacks required key 'principles'",
        f"{path}:1: the mapping file lacks required key 'source'",
    ]


def test_invalid_yaml_and_duplicate_keys_name_their_line(tmp_path):
    path = write(tmp_path, HEAD + "domains: [unclosed\n")
    assert problems_of(path) == [
        f"{path}:13: invalid YAML: expected ',' or ']', but got '<stream end>'"
    ]
    path = write(tmp_path, 'version: "1"\nitems: []\nversion: "2"\n')
    assert problems_of(path) == [f"{path}:3: invalid YAML: duplicate key 'version'"]


def test_unreadable_file(tmp_path):
    path = tmp_path / "absent.yaml"
    assert problems_of(path) == [f"{path}:0: cannot read file: No such file or directory"]


def test_question_ids_are_checked_only_when_given(tmp_path):
    path = write(
        tmp_path,
        HEAD
        + DOMAINS
        + """\
items:
  - {id: PR-01, domain: protection, level: basic, label: {ja: 修正, en: Fixes}, sources: [question:A6.99]}
""",
    )
    assert len(load(path).items) == 1
    assert problems_of(path, questions=SMALL_QUESTIONS) == [
        f"{path}:20: item PR-01: unknown question 'A6.99' (not in the catalogue)"
    ]


def test_the_caller_decides_which_metrics_exist(tmp_path):
    path = write(tmp_path, HEAD + DOMAINS + SMALL_ITEMS)
    assert problems_of(path, metrics=("kev_open", "supplier_spof")) == [
        f"{path}:11: principle 'E': unknown metric 'board_review'",
        f"{path}:28: item GV-01: unknown metric 'board_review'",
    ]
    with pytest.raises(TypeError):
        load(path, metrics="kev_open")


def test_the_error_message_lists_every_problem(tmp_path):
    path = write(tmp_path, 'version: "1"\n')
    with pytest.raises(MappingError) as caught:
        load(path)
    assert len(caught.value.problems) == 4
    assert str(caught.value) == "\n".join(caught.value.problems)


# --- Coverage -----------------------------------------------------------------------------------


@pytest.fixture
def small(tmp_path) -> mapping.GovernanceMapping:
    return load(write(tmp_path, HEAD + DOMAINS + SMALL_ITEMS), questions=SMALL_QUESTIONS)


EVIDENCED = {"metric:kev_open", "metric:board_review", "control:malware_protection", "metric:other"}


def test_coverage_of_a_small_mapping_is_exact(small):
    table = coverage(small, EVIDENCED, language="en")
    assert table["version"] == "t1"
    assert table["language"] == "en"
    assert table["counts"] == {
        "basic": {"evidenced": 2, "total": 3},
        "desirable": {"evidenced": 1, "total": 2},
    }
    principles = {row["key"]: row for row in table["principles"]}
    assert principles["A"] == {
        "key": "A",
        "label": "Risk management",
        "rationale": "",
        "evidenced": True,
        "sources": [
            {"source": "metric:kev_open", "evidenced": True},
            {"source": "metric:supplier_spof", "evidenced": False},
        ],
        "counts": {"sources": {"evidenced": 1, "total": 2}},
    }
    assert (principles["B"]["evidenced"], principles["B"]["counts"]) == (
        False,
        {"sources": {"evidenced": 0, "total": 0}},
    )
    assert principles["D"]["counts"] == {"sources": {"evidenced": 0, "total": 1}}
    assert principles["E"]["counts"] == {"sources": {"evidenced": 1, "total": 1}}

    domains = {row["key"]: row for row in table["domains"]}
    assert [row["key"] for row in table["domains"]] == list(mapping.DOMAIN_KEYS)
    protection = domains["protection"]
    assert protection["label"] == "Protection"
    assert protection["counts"] == {
        "basic": {"evidenced": 1, "total": 2},
        "desirable": {"evidenced": 0, "total": 1},
    }
    assert protection["items"] == [
        {
            "id": "PR-01",
            "level": "basic",
            "label": "Fixes",
            "note": "",
            "evidenced": True,
            "sources": [
                {"source": "control:firewalls", "evidenced": False},
                {"source": "metric:kev_open", "evidenced": True},
            ],
        },
        {
            "id": "PR-02",
            "level": "basic",
            "label": "KEV",
            "note": "",
            "evidenced": False,
            "sources": [{"source": "question:A6.9", "evidenced": False}],
        },
        {
            "id": "PR-03",
            "level": "desirable",
            "label": "Development",
            "note": "",
            "evidenced": False,
            "sources": [],
        },
    ]
    assert domains["governance"]["counts"] == {
        "basic": {"evidenced": 1, "total": 1},
        "desirable": {"evidenced": 1, "total": 1},
    }
    assert domains["governance"]["items"][0]["note"] == "A note"
    assert domains["detection"]["counts"] == {
        "basic": {"evidenced": 0, "total": 0},
        "desirable": {"evidenced": 0, "total": 0},
    }


def test_coverage_labels_follow_the_language(small):
    table = coverage(small, set())
    assert table["language"] == "ja"
    assert table["principles"][0]["label"] == "リスク管理"
    assert table["domains"][2]["items"][0]["label"] == "修正"
    assert table["counts"] == {
        "basic": {"evidenced": 0, "total": 3},
        "desirable": {"evidenced": 0, "total": 2},
    }
    with pytest.raises(ValueError, match="language"):
        coverage(small, set(), language="de")


def test_coverage_of_the_bundled_file_at_the_extremes(bundled):
    """With every cited source evidenced, exactly the items that cite something are; with none,
    nothing is — and the totals add up over the domains."""
    items_with_sources = {
        level: sum(1 for item in bundled.items if item.level == level and item.sources)
        for level in mapping.LEVELS
    }
    totals = {
        level: sum(1 for item in bundled.items if item.level == level) for level in mapping.LEVELS
    }
    full = coverage(bundled, bundled.sources())
    assert full["counts"] == {
        level: {"evidenced": items_with_sources[level], "total": totals[level]}
        for level in mapping.LEVELS
    }
    assert all(row["evidenced"] for row in full["principles"])
    empty = coverage(bundled, set())
    assert empty["counts"] == {
        level: {"evidenced": 0, "total": totals[level]} for level in mapping.LEVELS
    }
    for level in mapping.LEVELS:
        assert sum(row["counts"][level]["total"] for row in full["domains"]) == totals[level]


def test_rag_sources_are_the_principles_sources_in_order(small, bundled):
    assert rag_sources(small, "A") == ["metric:kev_open", "metric:supplier_spof"]
    assert rag_sources(small, "B") == []
    assert rag_sources(bundled, "E")[0] == "metric:board_review"
    with pytest.raises(KeyError, match="unknown principle 'Z'"):
        rag_sources(small, "Z")
