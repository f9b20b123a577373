"""``core`` is the ground floor every app builds on: nothing in it imports a domain app, so any
app can use it without an import circle. What needs a domain lives in that app (access rules in
``organisations``) or above the apps (the start page in ``mamori/views.py``)."""

from __future__ import annotations

import ast
from pathlib import Path

import mamori

SOURCE = Path(mamori.__file__).resolve().parent
CORE = SOURCE / "core"
DOMAIN_APPS = sorted(
    path.parent.name for path in SOURCE.glob("*/apps.py") if path.parent.name != "core"
)


def _imported(text: str, package: str) -> list[tuple[int, str]]:
    """Every module ``text`` imports (at the top or inside a function), relative ones resolved
    against ``package``."""
    found = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = parts[: len(parts) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            if base == "mamori":  # ``from mamori import organisations`` imports the app
                found += [(node.lineno, f"mamori.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, base))
    return found


def _domain_imports(text: str, package: str) -> list[tuple[int, str]]:
    return [
        (line, module)
        for line, module in _imported(text, package)
        if module.startswith("mamori.") and module.split(".")[1] in DOMAIN_APPS
    ]


def test_the_domain_apps_are_found():
    assert {"organisations", "assessments", "certificates", "verification"} <= set(DOMAIN_APPS)


def test_no_module_in_core_imports_a_domain_app():
    offending = []
    for path in sorted(CORE.rglob("*.py")):
        module = ".".join(path.relative_to(SOURCE.parent).with_suffix("").parts)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        offending += [
            f"{path.relative_to(SOURCE.parent)}:{line}: imports {imported}"
            for line, imported in _domain_imports(path.read_text(encoding="utf-8"), package)
        ]
    assert not offending, "core imports a domain app:\n" + "\n".join(offending)


def test_the_check_sees_every_form_of_import():
    """The check can fail: absolute, from-, package-relative and function-level imports."""
    sample = (
        "import mamori.plus.models\n"
        "from mamori import organisations, core\n"
        "from mamori.core import bulk\n"
        "def later():\n"
        "    from ...assessments.models import Assessment\n"
        "    from . import pdf\n"
    )
    assert _domain_imports(sample, "mamori.core.templatetags") == [
        (1, "mamori.plus.models"),
        (2, "mamori.organisations"),
        (5, "mamori.assessments.models"),
    ]
