"""PROGRESS-CTO score (technical success with the hybrid approach).

Source: Christopoulos G et al. JACC Cardiovasc Interv 2016;9(1):1-9, doi:10.1016/j.jcin.2015.09.022.
781 procedures; AUC 0.778 derivation / 0.720 validation. Range 0–4; no bands; success per score value
not published here (docs/spec/scores.md §3): points only.
"""

from cds.scoring.model import Item, ScoreDefinition, is_false, is_true, one_of

PROGRESS_CTO = ScoreDefinition(
    id="progress_cto",
    name="PROGRESS-CTO",
    outcome="technical_success",
    outcome_label="technical success of hybrid CTO-PCI",
    citation="Christopoulos G et al. JACC Cardiovasc Interv 2016;9(1):1-9",
    url="https://doi.org/10.1016/j.jcin.2015.09.022",
    items=(
        Item(
            "proximal_cap_ambiguity",
            1,
            is_true("proximal_cap_ambiguity"),
            "lesion",
            "proximal cap ambiguity",
        ),
        Item(
            "tortuosity_moderate_severe",
            1,
            one_of("tortuosity", "moderate", "severe", unknown_when=("unseen",)),
            "lesion",
            "moderate or severe tortuosity",
        ),
        Item(
            "circumflex_cto",
            1,
            one_of("target_vessel", "LCX"),
            "lesion",
            "circumflex target vessel",
        ),
        Item(
            "no_interventional_collaterals",
            1,
            is_false("interventional_collaterals"),
            "lesion",
            "no interventional collaterals",
        ),
    ),
    points_range=(0, 4),
)
