"""EuroCTO CASTLE score of technical failure.

Source: Szijgyarto Z et al. JACC Cardiovasc Interv 2019;12(4):335-342, doi:10.1016/j.jcin.2018.11.020.
EuroCTO registry: derivation 14,882, validation 5,745; AUC 0.66 / 0.68. Outcome: technical failure.
Grade A (docs/spec/scores.md §7). Range 0–6; no bands. Published failure: 8 % at 0–1 points,
35 % at ≥ 4 points; 2 and 3 points not published here. A stump that is not visible and tortuosity
that cannot be seen are positive findings in CASTLE, not unknowns.
"""

from cds.scoring.model import (
    Item,
    PublishedEstimate,
    ScoreDefinition,
    Stratum,
    at_least,
    is_true,
    one_of,
)

_NOTE = "EuroCTO registry (Szijgyarto 2019); counts not given"

CASTLE = ScoreDefinition(
    id="castle",
    name="EuroCTO CASTLE",
    outcome="technical_failure",
    outcome_label="technical failure of CTO-PCI",
    citation="Szijgyarto Z et al. JACC Cardiovasc Interv 2019;12(4):335-342",
    url="https://doi.org/10.1016/j.jcin.2018.11.020",
    items=(
        Item("prior_cabg", 1, is_true("prior_cabg"), "patient", "CABG history"),
        Item("age_ge_70", 1, at_least("age_years", 70), "patient", "age ≥ 70 years"),
        Item(
            "stump_blunt_or_invisible",
            1,
            one_of("stump", "blunt", "no_stump"),
            "lesion",
            "stump blunt or not visible",
        ),
        Item(
            "tortuosity_severe_or_unseen",
            1,
            one_of("tortuosity", "severe", "unseen"),
            "lesion",
            "severe tortuosity or tortuosity not seen",
        ),
        Item(
            "occlusion_length_ge_20mm",
            1,
            at_least("occlusion_length_mm", 20),
            "lesion",
            "occlusion length ≥ 20 mm",
        ),
        Item(
            "severe_calcification",
            1,
            one_of("calcification", "severe"),
            "lesion",
            "severe calcification",
        ),
    ),
    points_range=(0, 6),
    strata=(
        # Szijgyarto 2019: technical failure 8 % at 0–1 points, 35 % at ≥ 4 points.
        Stratum(None, 1, PublishedEstimate(0.08, note=_NOTE)),
        Stratum(4, None, PublishedEstimate(0.35, note=_NOTE)),
    ),
)
