"""Layers import downward only: cli/api -> services -> index -> store -> engine.

An upward import couples a lower layer to a higher one (the engine to the
database, the store to HTTP), which is how layering erodes one convenient
import at a time. This contract reads every module of ``audiofp/`` and
``api/`` with :mod:`ast` (nothing is imported or executed), resolves each
import, relative ones included, to a full module name, and checks it against
the rules below.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("audiofp", "api")


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _is_local_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imported_modules(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Full names of the modules ``source`` (the text of ``module``) imports.

    ``from X import y`` counts as importing ``X.y`` when that is one of our
    modules, else ``X``. ``importlib.import_module("...")`` with a literal
    name counts too.
    """
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base_parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*base_parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            for alias in node.names:
                full = f"{base}.{alias.name}"
                found.add(full if _is_local_module(full) else base)
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.add(node.args[0].value)
    return found


def _modules() -> Iterator[tuple[str, set[str]]]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            is_package = parts[-1] == "__init__"
            name = ".".join(parts[:-1] if is_package else parts)
            yield name, imported_modules(path.read_text(), name, is_package=is_package)


#: (layer, modules it must not import, reason).
FORBIDDEN: tuple[tuple[str, tuple[str, ...], str], ...] = (
    (
        "audiofp.engine",
        ("sqlalchemy", "flask", "alembic", "audiofp.store", "audiofp.services", "audiofp.cli", "audiofp.config"),
        "the engine is pure numpy: no database, no HTTP, nothing above it (config imports the engine)",
    ),
    ("audiofp.store", ("audiofp.index", "audiofp.services", "audiofp.cli", "api", "flask"),
     "the store sits below the use cases and the doors"),
    ("audiofp.index", ("audiofp.services", "audiofp.cli", "api", "flask"),
     "the index's read side sits on the store, below the use cases"),
    ("audiofp.services", ("audiofp.cli", "api", "flask"), "the use cases know neither the CLI nor HTTP"),
    ("audiofp", ("api",), "the web application sits on top of audiofp, never inside it"),
)

#: The only audiofp modules the web application may use.
API_MAY_IMPORT = ("audiofp.services", "audiofp.config", "audiofp.errors", "audiofp.engine.types")


def violations(modules: dict[str, set[str]], layer: str, forbidden: tuple[str, ...]) -> list[str]:
    """``module -> import`` for each import of a module of ``layer`` that falls in ``forbidden``."""
    return sorted(
        f"{module} -> {name}"
        for module, names in modules.items()
        if _within(module, layer)
        for name in names
        if any(_within(name, bad) for bad in forbidden)
    )


def api_violations(modules: dict[str, set[str]]) -> list[str]:
    """``module -> import`` for each audiofp module the web application uses outside ``API_MAY_IMPORT``."""
    return sorted(
        f"{module} -> {name}"
        for module, names in modules.items()
        if _within(module, "api")
        for name in names
        if _within(name, "audiofp") and not any(_within(name, ok) for ok in API_MAY_IMPORT)
    )


@pytest.fixture(scope="module")
def modules() -> dict[str, set[str]]:
    return dict(_modules())


def test_the_contract_reads_every_layer(modules):
    # A walk that found nothing would pass every rule below.
    for layer in ("audiofp.engine", "audiofp.store", "audiofp.services", "audiofp.cli", "api"):
        assert any(_within(m, layer) for m in modules), layer
    assert "audiofp.engine.params" in modules["audiofp.engine.hashes"]
    assert "audiofp.services" in modules["api.auth"]


@pytest.mark.parametrize(("layer", "forbidden", "reason"), FORBIDDEN, ids=[rule[0] for rule in FORBIDDEN])
def test_layers_import_downward_only(modules, layer, forbidden, reason):
    assert violations(modules, layer, forbidden) == [], reason


def test_api_uses_only_services_config_errors_and_engine_types(modules):
    assert api_violations(modules) == []


# --------------------------------------------------------------------------- the checker itself
def test_an_upward_relative_import_is_reported():
    source = "import numpy as np\nfrom ..store import Store\nfrom . import params\n"
    names = imported_modules(source, "audiofp.engine.fake")
    assert names == {"numpy", "audiofp.store", "audiofp.engine.params"}
    found = violations({"audiofp.engine.fake": names}, *FORBIDDEN[0][:2])
    assert found == ["audiofp.engine.fake -> audiofp.store"]


def test_upward_imports_in_every_spelling_are_reported():
    source = (
        "import sqlalchemy.orm\n"
        "from audiofp import config\n"
        "import importlib\nimportlib.import_module('audiofp.services')\n"
        "def f():\n    from api import create_app\n"
    )
    names = imported_modules(source, "audiofp.engine", is_package=True)
    found = violations({"audiofp.engine": names}, "audiofp.engine", FORBIDDEN[0][1] + ("api",))
    assert found == [
        "audiofp.engine -> api",
        "audiofp.engine -> audiofp.config",
        "audiofp.engine -> audiofp.services",
        "audiofp.engine -> sqlalchemy.orm",
    ]


def test_the_api_may_not_reach_into_the_store():
    names = imported_modules("from audiofp.store.sounds import get_sound\nfrom audiofp.services import ping\n", "api.fake")
    assert api_violations({"api.fake": names}) == ["api.fake -> audiofp.store.sounds"]
