"""Check that a document is ``mamori.evidence/1`` before anything reads it.

The JSON Schema (``schemas/evidence.schema.json``, documented in ``docs/evidence.md``) says what
the agent writes. Before the schema runs, a cheap walk bounds the document's shape -- nesting
depth, list lengths, string sizes -- so that a hostile or broken upload (a million packages, a
deeply nested object) is refused in constant time instead of keeping a worker busy. Plain
Python, no Django: the server, the CLI and the tests share it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema

SCHEMA_ID = "mamori.evidence/1"
SCHEMA_FILE = Path(__file__).resolve().parent / "schemas" / "evidence.schema.json"
# A real host has a few thousand packages and its evidence is a few hundred KiB; these bounds
# leave two orders of magnitude of room and still keep validation under a few seconds.
MAX_EVIDENCE_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 32
MAX_LIST_ITEMS = 200_000  # the schema's own bound for packages.items
MAX_OBJECT_KEYS = 10_000
MAX_STRING_CHARS = 65_536
MAX_REASON_CHARS = 300
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


class EvidenceError(ValueError):
    """The document is not valid evidence: ``path`` is a JSON path (``$.packages.items[3]``),
    ``reason`` one line saying what is wrong there."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _validator() -> jsonschema.protocols.Validator:
    document = schema()
    cls = jsonschema.validators.validator_for(document, default=jsonschema.Draft202012Validator)
    cls.check_schema(document)
    return cls(document, format_checker=cls.FORMAT_CHECKER)


def validate_evidence(evidence: object) -> None:
    """Raise EvidenceError unless ``evidence`` (parsed JSON) is valid ``mamori.evidence/1``."""
    if not isinstance(evidence, dict):
        raise EvidenceError("$", "the evidence must be a JSON object")
    if evidence.get("schema") != SCHEMA_ID:
        shown = _shown(evidence.get("schema"))
        raise EvidenceError("$.schema", f"expected {SCHEMA_ID!r}, found {shown}")
    check_shape(evidence)
    packages = evidence.get("packages")
    items = packages.get("items") if isinstance(packages, dict) else None
    fast = _package_items()
    if fast is None or not isinstance(items, list):
        _raise_first(_validator().iter_errors(evidence))
        return
    # The package list is most of the document: check it item by item with a compiled
    # checker (jsonschema costs ~0.1 ms an item), and the rest with jsonschema.
    array_rules, item_is_valid, item_validator = fast
    rest = {**evidence, "packages": {**packages, "items": []}}
    _raise_first(_validator().iter_errors(rest))
    _raise_first(array_rules.iter_errors(items), "$.packages.items")
    for index, item in enumerate(items):
        if not item_is_valid(item):
            _raise_first(item_validator.iter_errors(item), f"$.packages.items[{index}]")


def _raise_first(errors: Iterable[jsonschema.ValidationError], prefix: str = "$") -> None:
    error = next(iter(errors), None)
    if error is not None:
        error = _most_specific(error)
        raise EvidenceError(prefix + error.json_path[1:], _reason(error.message))


@lru_cache(maxsize=1)
def _package_items() -> tuple[Any, Callable[[Any], bool], Any] | None:
    """(validator of packages.items without its ``items``, a compiled validity test of one
    item, a jsonschema validator of one item for the error message), or None when the schema
    does not have that shape or uses keywords the compiler does not know."""
    document = schema()
    definitions = document.get("$defs", {})
    section = document.get("properties", {}).get("packages", {})
    branches = section.get("anyOf", [section])
    for branch in branches:
        array = branch.get("properties", {}).get("items") if isinstance(branch, dict) else None
        if isinstance(array, dict) and isinstance(array.get("items"), dict):
            break
    else:
        return None
    test = _compile(array["items"], definitions)
    if test is None:
        return None
    cls = type(_validator())
    rest = {key: value for key, value in array.items() if key != "items"}
    item_schema = {"$defs": definitions, **array["items"]}
    return cls(rest), test, cls(item_schema, format_checker=cls.FORMAT_CHECKER)


# The JSON Schema keywords the item compiler understands; anything else disables it.
_ANNOTATIONS = {"description", "title", "$comment", "examples", "default"}
_COMPILABLE = {
    "type",
    "enum",
    "const",
    "maxLength",
    "minLength",
    "required",
    "properties",
    "additionalProperties",
    "if",
    "then",
    "else",
    "$ref",
    *_ANNOTATIONS,
}
_TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer())
    ),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}


def _json_equal(left: Any, right: Any) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    return left == right


def _compile(
    node: Any, definitions: dict[str, Any], depth: int = 0
) -> Callable[[Any], bool] | None:
    """A fast validity test equivalent to jsonschema for a small subset of keywords (types,
    enum/const, string lengths, object properties, if/then/else, local $refs), or None."""
    if node is True:
        return lambda value: True
    if node is False:
        return lambda value: False
    if not isinstance(node, dict) or set(node) - _COMPILABLE or depth > 8:
        return None
    tests: list[Callable[[Any], bool]] = []
    if "$ref" in node:
        reference = node["$ref"]
        if not isinstance(reference, str) or not reference.startswith("#/$defs/"):
            return None
        target = _compile(
            definitions.get(reference.removeprefix("#/$defs/")), definitions, depth + 1
        )
        if target is None:
            return None
        tests.append(target)
    if "type" in node:
        names = node["type"] if isinstance(node["type"], list) else [node["type"]]
        if any(name not in _TYPES for name in names):
            return None
        checks = [_TYPES[name] for name in names]
        tests.append(lambda value: any(check(value) for check in checks))
    if "enum" in node:
        allowed = list(node["enum"])
        tests.append(lambda value: any(_json_equal(value, option) for option in allowed))
    if "const" in node:
        constant = node["const"]
        tests.append(lambda value: _json_equal(value, constant))
    if "maxLength" in node:
        most = node["maxLength"]
        tests.append(lambda value: not isinstance(value, str) or len(value) <= most)
    if "minLength" in node:
        least = node["minLength"]
        tests.append(lambda value: not isinstance(value, str) or len(value) >= least)
    if "required" in node:
        required = list(node["required"])
        tests.append(lambda value: not isinstance(value, dict) or all(k in value for k in required))
    properties: dict[str, Callable[[Any], bool]] = {}
    for name, sub in node.get("properties", {}).items():
        compiled = _compile(sub, definitions, depth + 1)
        if compiled is None:
            return None
        properties[name] = compiled
    if properties:
        tests.append(
            lambda value: (
                not isinstance(value, dict)
                or all(test(value[name]) for name, test in properties.items() if name in value)
            )
        )
    if "additionalProperties" in node:
        extra = _compile(node["additionalProperties"], definitions, depth + 1)
        if extra is None:
            return None
        known = set(node.get("properties", {}))
        tests.append(
            lambda value: (
                not isinstance(value, dict)
                or all(extra(item) for key, item in value.items() if key not in known)
            )
        )
    if "if" in node:
        condition = _compile(node["if"], definitions, depth + 1)
        then = _compile(node.get("then", True), definitions, depth + 1)
        otherwise = _compile(node.get("else", True), definitions, depth + 1)
        if condition is None or then is None or otherwise is None:
            return None
        tests.append(lambda value: then(value) if condition(value) else otherwise(value))
    return lambda value: all(test(value) for test in tests)


def _most_specific(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """For an anyOf/oneOf failure (a section is either complete or a failed section), the
    error of the alternative that came closest -- fewest errors, then the deepest -- instead
    of jsonschema's generic "is not valid under any of the given schemas"."""
    while error.context:
        branches: dict[Any, list[jsonschema.ValidationError]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        closest = min(
            branches.values(),
            key=lambda errors: (len(errors), -max(len(e.absolute_path) for e in errors)),
        )
        error = max(closest, key=lambda e: len(e.absolute_path))
    return error


def check_shape(document: Any) -> None:
    """Refuse documents too deep, too long or too large to be evidence, without recursion."""
    stack: list[tuple[Any, str, int]] = [(document, "$", 0)]
    while stack:
        value, path, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise EvidenceError(path, f"nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            if len(value) > MAX_OBJECT_KEYS:
                raise EvidenceError(path, f"more than {MAX_OBJECT_KEYS} keys")
            for key, item in value.items():
                if not isinstance(key, str):
                    raise EvidenceError(path, "object keys must be strings")
                if isinstance(item, (dict, list)) or (
                    isinstance(item, str) and len(item) > MAX_STRING_CHARS
                ):
                    stack.append((item, _child(path, key), depth + 1))
        elif isinstance(value, list):
            if len(value) > MAX_LIST_ITEMS:
                raise EvidenceError(path, f"more than {MAX_LIST_ITEMS} items ({len(value)})")
            for index, item in enumerate(value):
                if isinstance(item, (dict, list)) or (
                    isinstance(item, str) and len(item) > MAX_STRING_CHARS
                ):
                    stack.append((item, f"{path}[{index}]", depth + 1))
        elif isinstance(value, str) and len(value) > MAX_STRING_CHARS:
            raise EvidenceError(path, f"text longer than {MAX_STRING_CHARS} characters")


_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _child(path: str, key: str) -> str:
    if _IDENTIFIER.match(key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(_shown(key, 60))}]"


def _shown(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return _UNSAFE.sub("?", text if len(text) <= limit else text[: limit - 1] + "…")


def _reason(message: str) -> str:
    """jsonschema's message, on one line and short: it quotes the offending value, which may
    be huge or hostile."""
    text = _UNSAFE.sub(" ", message)
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"
