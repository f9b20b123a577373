"""The pure layer behind the analysis pages (``report``): no Django, names and words come from
the caller, figures from the analysis."""

from __future__ import annotations

import subprocess
import sys

from mamori.supplychain import analysis, graph, report

DOCUMENT = {
    "schema": graph.SCHEMA,
    "nodes": [
        {
            "id": "core",
            "entity": "bank",
            "name": "Core",
            "country": "JP",
            "critical": True,
            "certified": True,
            "disclosure": "full",
        },
        *[
            {
                "id": key,
                "entity": entity,
                "name": key,
                "country": country,
                "critical": False,
                "certified": certified,
                "disclosure": disclosure,
            }
            for key, entity, country, certified, disclosure in (
                ("cloud", "cloudco", "JP", True, "full"),
                ("dc", "dcco", "JP", True, "partial"),
                ("grid", "gridco", "", False, "none"),
                ("spare", "spareco", "US", True, "full"),
            )
        ],
    ],
    "requirements": [
        {"node": "core", "need": "hosting", "providers": ["cloud", "dc"]},
        {"node": "cloud", "need": "power", "providers": ["grid"]},
        {"node": "dc", "need": "power", "providers": ["grid"]},
        {"node": "spare", "need": "power", "providers": ["grid"]},
    ],
}


def test_pure_modules_import_no_django():
    code = (
        "import sys, mamori.supplychain.graph, mamori.supplychain.analysis, "
        "mamori.supplychain.report; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'django'))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


def test_upstream_document_and_tiers():
    upstream = report.upstream_document(DOCUMENT, "dc")
    assert [n["id"] for n in upstream["nodes"]] == ["dc", "grid"]
    assert [n["critical"] for n in upstream["nodes"]] == [True, False]
    assert report.tiers_from(DOCUMENT, "core") == {"core": 0, "cloud": 1, "dc": 1, "grid": 2}


def test_service_view_names_rows_and_findings():
    document = report.upstream_document(DOCUMENT, "core")
    result = analysis.analyse(graph.from_dict(document))
    view = report.service_view(
        document,
        "core",
        result,
        node_names={"core": "勘定系", "grid": "東京電力網"},
        entity_names={"grid": "電力会社"},
        disclosure_labels={"none": "開示なし"},
    )
    rows = {row["id"]: row for row in view["rows"]}
    assert [row["id"] for row in view["rows"]] == ["core", "cloud", "dc", "grid"]
    assert rows["grid"]["name"] == "東京電力網"
    assert rows["grid"]["entity"] == "電力会社"
    assert rows["cloud"]["name"] == "cloud"  # no name given: the id
    assert rows["grid"]["disclosure_label"] == "開示なし"
    assert rows["grid"]["spof"]
    assert not rows["cloud"]["spof"]
    assert view["findings"]["spof"] == ["東京電力網"]
    (convergence,) = view["findings"]["hidden_convergence"]
    assert convergence["converges_names"] == ["東京電力網"]
    assert (view["suppliers"], view["tiers"]) == (3, 2)
    edges = [e for e in view["elements"] if e["group"] == "edges"]
    assert {(e["data"]["target"], e["classes"]) for e in edges} == {
        ("cloud", "alternative"),
        ("dc", "alternative"),
        ("grid", "sole"),
    }


def test_concentration_view_uses_the_callers_words_and_keeps_full_labels():
    result = analysis.analyse(graph.from_dict(DOCUMENT))
    long_name = "クラウド" * 40
    scopes = report.concentration_view(
        DOCUMENT,
        result,
        key_label=lambda dimension, key: long_name if key == "cloudco" else key or "?",
        word=lambda name: name.upper(),
    )
    assert [s["label"] for s in scopes] == ["ALL_TIERS", "TIER1"]
    entity = scopes[0]["dimensions"][0]
    assert entity["label"] == "ENTITY"
    assert entity["level_label"] == entity["level"].upper()
    bars = {b["label"]: b for b in entity["bars"]}
    assert bars[long_name]["percent"] == 25.0  # 1 of the 4 provider edges, label not cut
    assert bars["gridco"]["percent"] == 50.0
    country = {b["label"]: b for b in scopes[0]["dimensions"][2]["bars"]}
    assert country["?"]["value"] == "50%"  # the unknown country, named by the caller
    assert [b["label"] for b in scopes[0]["hhi_bars"]] == ["ENTITY", "PARENT", "COUNTRY"]


def test_bar_widths():
    assert report.bar("x", 0, "0%")["percent"] == 0
    assert report.bar("x", 0.001, "0%")["percent"] == 0.5  # visible
    assert report.bar("x", 1, "100%")["percent"] == 100
