"""``validate_evidence``: the agent's schema, the shape bounds, and the fast package checker."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mamori.verification import evidence as module
from mamori.verification.evidence import EvidenceError, validate_evidence

from .factory import debian12_host, good_host


def test_good_and_real_package_lists_are_valid():
    validate_evidence(good_host())
    validate_evidence(debian12_host())


def test_a_failed_section_is_status_and_errors_only():
    document = good_host()
    document["listening"] = {
        "status": "unknown",
        "errors": [{"path": None, "reason": "not available on a mounted root"}],
    }
    validate_evidence(document)


@pytest.mark.parametrize(
    ("change", "path", "reason"),
    [
        (lambda e: e.__setitem__("schema", None), "$.schema", "expected 'mamori.evidence/1'"),
        (lambda e: e["services"].pop("masked"), "$.services", "'masked' is a required property"),
        (
            lambda e: e["firewall"].update(default_inbound="open"),
            "$.firewall.default_inbound",
            "'open' is not one of",
        ),
        (
            lambda e: e["packages"]["items"][1].update(manager="snap"),
            "$.packages.items[1].manager",
            "'snap' is not one of",
        ),
        (
            lambda e: e["packages"]["items"][0].pop("source_name"),
            "$.packages.items[0]",
            "'source_name' is a required property",
        ),
        (
            lambda e: e["packages"]["items"][0].update(location="/usr/lib"),
            "$.packages.items[0]",
            "False schema does not allow '/usr/lib'",
        ),
        (
            lambda e: e["packages"].update(items="all"),
            "$.packages.items",
            "'all' is not of type 'array'",
        ),
        (
            lambda e: e["packages"].update(managers=["dpkg", "dpkg"]),
            "$.packages.managers",
            "non-unique",
        ),
        (
            lambda e: e.update(extra=1),
            "$",
            "Additional properties are not allowed ('extra' was unexpected)",
        ),
        (
            lambda e: e["accounts"]["users"].append("root"),
            "$.accounts.users[5]",
            "'root' is not of type 'object'",
        ),
    ],
)
def test_errors_name_the_closest_json_path(change, path, reason):
    document = good_host()
    change(document)
    with pytest.raises(EvidenceError) as raised:
        validate_evidence(document)
    assert raised.value.path == path
    assert reason in raised.value.reason
    assert str(raised.value) == f"{raised.value.path}: {raised.value.reason}"


def nested(depth: int) -> dict:
    node: dict = {}
    for _ in range(depth):
        node = {"x": node}
    return node


@pytest.mark.parametrize(
    ("change", "path", "reason"),
    [
        (
            lambda e: e["ssh"]["settings"].update(deep=nested(40)),
            "$.ssh.settings.deep",
            "nested deeper than 32 levels",
        ),
        (
            lambda e: e["ssh"]["settings"].update(wide=dict.fromkeys(map(str, range(10_001)), 1)),
            "$.ssh.settings.wide",
            "more than 10000 keys",
        ),
        (
            lambda e: e["ssh"]["settings"].update(long="x" * 70_000),
            "$.ssh.settings.long",
            "longer than 65536",
        ),
        (
            lambda e: e["ssh"]["settings"].update({"we ird": ["y" * 70_000]}),
            "$.ssh.settings[\"'we ird'\"][0]",
            "longer than 65536",
        ),
        (
            lambda e: e["listening"].update(sockets=[{}] * 200_001),
            "$.listening.sockets",
            "more than 200000 items (200001)",
        ),
    ],
)
def test_shape_bounds_come_before_the_schema(change, path, reason):
    document = good_host()
    change(document)
    started = time.perf_counter()
    with pytest.raises(EvidenceError) as raised:
        validate_evidence(document)
    assert time.perf_counter() - started < 1
    assert raised.value.path.startswith(path)
    assert reason in raised.value.reason


def test_hostile_values_in_reasons_are_cut_and_flattened():
    document = good_host()
    document["firewall"]["default_inbound"] = "evil\n\x1b[31m" + "x" * 3000
    with pytest.raises(EvidenceError) as raised:
        validate_evidence(document)
    assert len(raised.value.reason) <= module.MAX_REASON_CHARS
    assert "\n" not in raised.value.reason
    assert "\x1b" not in raised.value.reason


def test_a_long_package_list_validates_and_an_error_names_its_item():
    # How fast is for bench/, not a timed test: the compiled checker that makes this take
    # about 1 s instead of jsonschema's 13 s is asserted to be in use below.
    document = good_host()
    item = document["packages"]["items"][0]
    document["packages"]["items"] = [{**item, "name": f"package-{i}"} for i in range(100_000)]
    validate_evidence(document)
    document["packages"]["items"][99_999]["version"] = None
    with pytest.raises(EvidenceError) as raised:
        validate_evidence(document)
    assert raised.value.path == "$.packages.items[99999].version"


def test_the_compiled_checker_is_in_use():
    assert module._package_items() is not None


JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
    st.sampled_from(["dpkg", "rpm", "apk", "python", "snap", "x" * 4096, "x" * 4097]),
)
KEYS = st.sampled_from(
    [
        "manager",
        "name",
        "version",
        "architecture",
        "source_name",
        "source_version",
        "location",
        "installer",
        "managed_by",
        "other",
    ]
)
VALID_ITEMS = st.one_of(
    st.fixed_dictionaries(
        {
            "manager": st.sampled_from(["dpkg", "rpm", "apk"]),
            "name": st.text(max_size=3),
            "version": st.text(max_size=3),
            "architecture": st.one_of(st.none(), st.text(max_size=3)),
            "source_name": st.text(max_size=3),
            "source_version": st.text(max_size=3),
        }
    ),
    st.fixed_dictionaries(
        {
            "manager": st.just("python"),
            "name": st.text(max_size=3),
            "version": st.text(max_size=3),
            "architecture": st.none(),
            "source_name": st.text(max_size=3),
            "source_version": st.text(max_size=3),
            "location": st.text(max_size=3),
            "installer": st.one_of(st.none(), st.text(max_size=3)),
            "managed_by": st.sampled_from(["dpkg", "rpm", "apk", None]),
        }
    ),
)
VALUES = st.one_of(
    JSON_SCALARS,
    st.sampled_from(["x" * 4096, "x" * 4097, "pip", "python"]),
    st.lists(JSON_SCALARS, max_size=1),
    st.just({}),
)


def one_change(item: dict, change: tuple) -> dict:
    """A valid item with at most one key set to a value or removed: one mistake from valid."""
    kind, key, value = change
    item = dict(item)
    if kind == "set":
        item[key] = value
    elif kind == "drop":
        item.pop(key, None)
    return item


ITEMS = st.one_of(
    st.builds(
        one_change,
        VALID_ITEMS,
        st.tuples(st.sampled_from(["keep", "set", "drop"]), KEYS, VALUES),
    ),
    VALUES,
)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ITEMS)
def test_the_compiled_checker_agrees_with_jsonschema(item):
    _array, is_valid, validator = module._package_items()
    assert is_valid(item) == validator.is_valid(item)


DPKG_ITEM = {
    "manager": "dpkg",
    "name": "openssl",
    "version": "3.0.17-1~deb12u2",
    "architecture": "amd64",
    "source_name": "openssl",
    "source_version": "3.0.17-1~deb12u2",
}
PIP_ITEM = {
    **DPKG_ITEM,
    "manager": "python",
    "architecture": None,
    "location": "/usr/local/lib/python3.11/dist-packages",
    "installer": "pip",
    "managed_by": None,
}


@pytest.mark.parametrize(
    ("item", "valid"),
    [
        (DPKG_ITEM, True),
        (PIP_ITEM, True),
        ({**DPKG_ITEM, "name": "x" * 4096}, True),
        ({**DPKG_ITEM, "name": "x" * 4097}, False),
        ({**DPKG_ITEM, "architecture": None}, True),
        ({**DPKG_ITEM, "architecture": 5}, False),
        ({**DPKG_ITEM, "name": True}, False),
        ({**DPKG_ITEM, "manager": "snap"}, False),
        ({**DPKG_ITEM, "other": 1}, False),
        ({**DPKG_ITEM, "location": "/usr/lib"}, False),
        ({key: value for key, value in DPKG_ITEM.items() if key != "version"}, False),
        ({key: value for key, value in PIP_ITEM.items() if key != "location"}, False),
        ({**PIP_ITEM, "managed_by": "pip"}, False),
        ({**PIP_ITEM, "managed_by": "dpkg"}, True),
        ({**PIP_ITEM, "installer": None}, True),
        ([DPKG_ITEM], False),
        (None, False),
    ],
)
def test_the_compiled_checker_on_boundaries(item, valid):
    _array, is_valid, validator = module._package_items()
    assert validator.is_valid(item) is valid
    assert is_valid(item) is valid
