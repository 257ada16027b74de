"""The pure layers stay pure (no I/O, no clock, no environment), and the public API is pinned.

The scoring core is held tighter still: it imports only the standard modules it needs and pydantic.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import cds

PURE_PACKAGES = ["scoring"]
ALLOWED_ROOTS = {
    "__future__",
    "collections",
    "dataclasses",
    "typing",
    "math",
    "itertools",
    "json",
    "re",  # pure: reading numbers written as text (inputs.number_from_text)
    "pydantic",
    "cds",
}


def _imports(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_scoring_core_imports_no_io() -> None:
    root = Path(cds.__file__).parent
    for package in PURE_PACKAGES:
        for path in (root / package).rglob("*.py"):
            assert _imports(path) <= ALLOWED_ROOTS, path


# The pure layers of the architecture (README "Layout"): hook request → context → source
# → mapping → scoring → card. Every module in them is pure unless it is an I/O edge listed below,
# and so is every other module whose docstring says "pure". New modules are covered without editing
# this file; a new edge has to be named here, with why.
PURE_LAYERS = ("context", "mapping", "scoring", "output")
IO_EDGES = {
    "context/services.py": "load_services reads the hook definitions (hooks/) once at start-up",
    "mapping/tables.py": "load_tables reads the mapping tables (defaults and a site directory) "
    "and the day (a registry as_of may not be after it)",
    "output/console.py": "prints the `cto-cds score` report to the terminal (rich)",
}
# Pure without saying so in their docstring: the lean FHIR model and the record/search shapes the
# pure layers read, and the pipeline after `read_record`.
PURE_ELSEWHERE = {"sources/resources.py", "sources/record.py", "sources/searches.py", "pipeline.py"}
# Docstrings that say "pure" about something else.
NOT_A_CLAIM = {"cli/app.py": "says the scoring it calls stays pure"}

BANNED_MODULES = {
    # network, servers, database
    "httpx", "fastapi", "starlette", "uvicorn", "socket", "urllib.request", "http.client",
    "sqlalchemy", "alembic", "asyncpg", "aiosqlite",
    # file system, processes, environment, terminal
    "os", "pathlib", "io", "shutil", "tempfile", "subprocess", "sys", "rich.console",
    # clock and randomness
    "time", "random", "secrets",
    # the package's own edges: settings read the environment; http/store/cli and the
    # REST/file sources do I/O
    "cds.settings", "cds.http", "cds.store", "cds.cli", "cds.sources.fhir", "cds.sources.files",
}  # fmt: skip
BANNED_CALLS = {"open", "print", "input"}  # builtins doing I/O
BANNED_METHODS = {"now", "today", "utcnow", "read_text", "read_bytes", "write_text", "write_bytes"}
PURE_CLAIM = re.compile(r"\bpure\b", re.IGNORECASE)


def _module_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def io_found(path: Path) -> list[str]:
    """What in `path` does (or imports something that does) I/O, reads the clock or the environment."""
    found = [
        f"imports {name}"
        for name in sorted(_module_names(path))
        if any(name == banned or name.startswith(f"{banned}.") for banned in BANNED_MODULES)
    ]
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.Call):
            continue
        if isinstance(node.func, ast.Name) and node.func.id in BANNED_CALLS:
            found.append(f"line {node.lineno}: calls {node.func.id}()")
        elif isinstance(node.func, ast.Attribute) and node.func.attr in BANNED_METHODS:
            found.append(f"line {node.lineno}: calls .{node.func.attr}()")
    return found


def pure_modules() -> set[str]:
    root = Path(cds.__file__).parent
    modules = {path.relative_to(root).as_posix() for path in root.rglob("*.py")}
    in_layers = {m for m in modules if m.split("/")[0] in PURE_LAYERS}
    claimed = {
        m
        for m in modules
        if PURE_CLAIM.search(ast.get_docstring(ast.parse((root / m).read_text())) or "")
    }
    return (in_layers | claimed | PURE_ELSEWHERE) - IO_EDGES.keys() - NOT_A_CLAIM.keys()


def test_pure_modules_cover_the_layers_and_every_claim() -> None:
    modules = pure_modules()
    # The derivation finds what it should: a guard against a path or regex that silently matches nothing.
    assert {
        "scoring/engine.py",
        "mapping/export.py",
        "output/cards.py",
        "context/order.py",
    } <= modules
    assert "auth/keys.py" in modules  # outside the layers, its docstring says "pure, no I/O"
    assert {"sources/fhir.py", "cli/app.py", "settings.py"}.isdisjoint(modules)


@pytest.mark.parametrize("module", sorted(pure_modules()))
def test_pure_module_does_no_io(module: str) -> None:
    assert io_found(Path(cds.__file__).parent / module) == [], module


@pytest.mark.parametrize("module", sorted(IO_EDGES))
def test_io_edges_are_real(module: str) -> None:
    """An edge that no longer does I/O leaves the list (and becomes checked as pure)."""
    assert io_found(Path(cds.__file__).parent / module), f"{module}: {IO_EDGES[module]}"


def test_public_api() -> None:
    assert sorted(cds.__all__) == sorted(
        [
            "INPUTS",
            "SCORES",
            "CdsError",
            "ConfigError",
            "InputError",
            "InputIssue",
            "ScoringPolicy",
            "__version__",
            "definitions",
            "evaluate",
            "parse_inputs",
            "score_all",
            "score_json",
        ]
    )
    for name in cds.__all__:
        assert hasattr(cds, name)


def _cds_imports(path: Path) -> set[str]:
    """The `cds.<package>` names a module imports (`cds.mapping`, `cds.sources`, ...)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        found |= {".".join(n.split(".")[:2]) for n in names if n.startswith("cds.")}
    return found


# Layers that must not reach into another: the trigger check is passed into context (an
# OrderTrigger), and the CDS Hooks wire models depend on nothing of the service.
FORBIDDEN = {
    "context": {"cds.mapping", "cds.http", "cds.output", "cds.pipeline"},
    "cdshooks": {"cds.mapping", "cds.http", "cds.output", "cds.pipeline", "cds.store"},
}


def test_layers_do_not_reach_into_each_other() -> None:
    root = Path(cds.__file__).parent
    for package, forbidden in FORBIDDEN.items():
        for path in (root / package).rglob("*.py"):
            assert not (_cds_imports(path) & forbidden), path
