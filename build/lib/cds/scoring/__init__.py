"""The pure scoring core: canonical inputs → published scores. No I/O, no clock, no settings."""

from cds.scoring.engine import evaluate, score_all, score_json
from cds.scoring.inputs import INPUTS, parse_inputs
from cds.scoring.scores import SCORES, ScoringPolicy, definitions

__all__ = [
    "INPUTS",
    "SCORES",
    "ScoringPolicy",
    "definitions",
    "evaluate",
    "parse_inputs",
    "score_all",
    "score_json",
]
