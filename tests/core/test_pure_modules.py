"""The pure layer stays pure: each module whose docstring says "pure logic, no Django imports"
imports, with everything it imports in turn, in an interpreter where Django cannot be imported —
the CLI, the benchmarks and the tests call them without a configured project. README lists the
same modules, so that a reader learns which they are.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import mamori

SOURCE = Path(mamori.__file__).resolve().parent
README = SOURCE.parent.parent / "README.md"
MARKER = "pure logic, no django imports"

# Run in a fresh interpreter: every import of Django is refused, as if it were not installed,
# and the refusal names the module whose code asked for it. Prints the modules that failed.
PROBE = r"""
import importlib, json, sys


class RefuseDjango:
    def find_spec(self, name, path=None, target=None):
        if name != "django" and not name.startswith("django."):
            return None
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename.startswith("<frozen"):
            frame = frame.f_back
        importer = frame.f_globals.get("__name__", "?") if frame is not None else "?"
        raise ModuleNotFoundError(f"{importer} imports {name}", name=name)


sys.meta_path.insert(0, RefuseDjango())
failures = {}
for module in sys.argv[1:]:
    try:
        importlib.import_module(module)
    except ImportError as exc:
        failures[module] = str(exc)
print(json.dumps(failures))
"""


def _module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def marked_pure_modules() -> set[str]:
    """The modules whose docstring carries the marker (whitespace and case aside)."""
    found = set()
    for path in SOURCE.rglob("*.py"):
        docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        if MARKER in " ".join(docstring.split()).lower():
            found.add(_module_name(path))
    return found


def _expand(path: str) -> list[str]:
    """``advisories/{osv,versions}.py`` → ``advisories/osv.py``, ``advisories/versions.py``."""
    group = re.fullmatch(r"(.*)\{([^}]*)\}(.*)", path)
    if group is None:
        return [path]
    head, choices, tail = group.groups()
    return [f"{head}{choice.strip()}{tail}" for choice in choices.split(",")]


def readme_pure_modules() -> set[str]:
    """The modules README's table lists in its rows about pure logic."""
    listed = set()
    for line in README.read_text(encoding="utf-8").splitlines():
        cells = line.split("|")
        if len(cells) < 3 or MARKER not in cells[2].lower():
            continue
        for path in re.findall(r"`([^`]+)`", cells[1]):
            for file in _expand(path.removeprefix("src/mamori/")):
                listed.add("mamori." + file.removesuffix(".py").replace("/", "."))
    return listed


def imports_without_django(modules) -> dict[str, str]:
    """Each module that cannot be imported without Django, with the reason."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *sorted(modules)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(result.stdout)


def test_every_pure_module_imports_without_django():
    modules = marked_pure_modules()
    assert "mamori.verification.evaluation" in modules, sorted(modules)  # discovery works
    failures = imports_without_django(modules)
    assert not failures, "\n".join(f"{module}: {why}" for module, why in failures.items())


def test_the_probe_names_the_module_that_pulls_django_in():
    """The check can fail: a module that imports Django, directly or through another."""
    failures = imports_without_django(["mamori.core.choices", "mamori.verification.services"])
    assert failures["mamori.core.choices"] == "mamori.core.choices imports django"
    assert re.fullmatch(
        r"mamori\.verification\.services\.\w+ imports django",
        failures["mamori.verification.services"],
    ), failures


def test_readme_lists_exactly_the_pure_modules():
    listed, marked = readme_pure_modules(), marked_pure_modules()
    assert listed == marked, {
        "listed in README, no marker": sorted(listed - marked),
        "marked, not in README": sorted(marked - listed),
    }
    for module in listed:
        assert (SOURCE.parent / (module.replace(".", "/") + ".py")).is_file(), module
