"""cto-cds: the Operator-CTO score and comparator CTO-PCI scores for CDS Hooks and SMART on FHIR."""

from importlib.metadata import PackageNotFoundError, version

from cds.errors import CdsError, ConfigError, InputError, InputIssue
from cds.scoring import (
    INPUTS,
    SCORES,
    ScoringPolicy,
    definitions,
    evaluate,
    parse_inputs,
    score_all,
    score_json,
)

try:
    __version__ = version("cto-cds")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = [
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
