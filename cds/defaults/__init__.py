"""The default mapping tables and service definitions, shipped inside the package.

They are package data, read through `importlib.resources`, so an installed wheel finds them without a
source checkout. In the repository, the top-level `mappings/` and `hooks/` are symbolic links to these
folders (one copy): a site never edits them, it keeps its overrides in a directory of its own
(`CTO_CDS_MAPPINGS_DIR`, `--mappings DIR`).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def _folder(name: str) -> Path:
    # The package is always installed unzipped (setuptools wheels), so the resource is a real folder.
    return Path(str(files(__name__) / name))


MAPPINGS_DIR = _folder("mappings")
HOOKS_DIR = _folder("hooks")
