"""The scoring core stays pure (no I/O, no clock, no settings), and the public API is pinned."""

from __future__ import annotations

import ast
from pathlib import Path

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


# Pure modules of the data path: no network, file system, environment or clock.
PURE_MODULES = [
    "mapping/codes.py",
    "mapping/matching.py",
    "mapping/order.py",
    "mapping/history.py",
    "mapping/findings.py",
    "mapping/operator.py",
    "mapping/provenance.py",
    "mapping/record_inputs.py",
    "mapping/export.py",
    "sources/resources.py",
    "sources/record.py",
    "sources/searches.py",
    "output/wording.py",
    "pipeline.py",
]
BANNED = {"httpx", "fastapi", "uvicorn", "socket", "os", "pathlib", "time", "subprocess"}


def test_mapping_and_record_modules_do_no_io() -> None:
    root = Path(cds.__file__).parent
    for module in PURE_MODULES:
        path = root / module
        assert not (_imports(path) & BANNED), module
        text = path.read_text()
        assert "today()" not in text, module
        assert ".now(" not in text, module


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
