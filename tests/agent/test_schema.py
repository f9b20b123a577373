"""The evidence schema is strict: wrong types and unknown keys are rejected, open maps are open
only where docs/evidence.md says so."""

from __future__ import annotations

import copy
import json

import pytest

from mamori_agent.collect import collect

from .conftest import REPO, SCHEMA_PATH


@pytest.fixture(scope="module")
def evidence(alpine_root) -> dict:
    return collect(str(alpine_root))  # few packages: quick to validate again and again


def test_docs_link_to_the_packaged_schema():
    link = REPO / "docs/evidence.schema.json"
    assert link.is_symlink()
    assert not link.readlink().is_absolute()
    assert link.resolve() == SCHEMA_PATH.resolve()


def test_lists_are_bounded_before_their_items_are_checked():
    """jsonschema reports keywords in order: a huge list fails on maxItems first."""
    problems = []

    def walk(node, path):
        if isinstance(node, dict):
            if node.get("type") == "array":
                keys = list(node)
                if "maxItems" not in keys or keys.index("maxItems") > keys.index("items"):
                    problems.append(path)
            for key, value in node.items():
                walk(value, f"{path}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{path}/{index}")

    walk(json.loads(SCHEMA_PATH.read_text()), "#")
    assert problems == []


def set_path(document: dict, path: str, value) -> dict:
    changed = copy.deepcopy(document)
    *parents, last = path.split(".")
    node = changed
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return changed


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("schema", "mamori.evidence/2"),
        ("mode", "container"),
        ("duration_ms", -1),
        ("duration_ms", 1.5),
        ("collected_at", "2026-11-25 10:00:00"),
        ("host.machine_id", "not-hex"),
        ("unexpected", 1),
        ("os.status", "fine"),
        ("os.errors", [{"path": "/etc/x"}]),
        ("os.kernel", "6.1"),
        ("packages.items.0.version", None),
        ("packages.items.0.manager", "pip"),
        ("packages.items.0.location", "/usr/lib"),  # only python items have one
        ("packages.managers", ["dpkg", "dpkg"]),
        ("firewall.default_inbound", "reject"),  # the effective default is accept/drop/null
        ("firewall.allowed_inbound", [{"port": 0, "protocol": "tcp", "source": "any"}]),
        ("firewall.allowed_inbound", [{"port": "22", "protocol": "tcp", "source": "any"}]),
        ("firewall.allowed_inbound", [{"port": 22, "protocol": "icmp", "source": "any"}]),
        ("ssh.settings.port", ["22"]),
        ("ssh.settings.maxauthtries", "3"),
        ("ssh.settings.Bad-Key", "x"),
        ("accounts.users.0.uid", -1),
        ("accounts.users.0.password", "secret"),
        ("accounts.users.0.hash", "$6$..."),
        ("privileges.admin_groups", {"root": ["alice"]}),
        ("malware.clamav.newest_signature", "yesterday"),
        ("listening.sockets", [{"protocol": "sctp", "address": "::", "port": 1, "inode": 1}]),
        ("os.pretty_name", "x" * 4097),
    ],
)
def test_wrong_documents_are_rejected(evidence, evidence_validator, path, value):
    assert evidence_validator.is_valid(evidence)
    assert not evidence_validator.is_valid(set_path(evidence, path, value))


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("ssh.settings.somefuturekeyword", ["a", 1]),
        ("privileges.admin_groups", {"wheel": []}),
        ("ssh", {"status": "unknown", "errors": [{"path": None, "reason": "internal error"}]}),
        ("listening", {"status": "unknown", "errors": [], "sockets": None}),
    ],
)
def test_open_places_stay_open(evidence, evidence_validator, path, value):
    assert evidence_validator.is_valid(set_path(evidence, path, value))
