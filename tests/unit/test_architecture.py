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
