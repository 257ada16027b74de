"""CL-score (Clinical and Lesion-related score) for first-attempt CTO-PCI.

Source: Alessandrino G et al. JACC Cardiovasc Interv 2015;8(12):1540-1548,
doi:10.1016/j.jcin.2015.07.009. 1,657 first-attempt CTO-PCI patients. Outcome: success of a
first-attempt CTO-PCI. Weights as the Operator-CTO paper's Table 1 gives them (grade S): 1.5 length,
2.0 severe calcification, 1.5 prior CABG, 1 for the rest. Range 0–8 in halves; categories and
success rates not published here (docs/spec/scores.md §5): points only.

Site settings (`ScoringPolicy`): CABG on the target vessel (default, the Operator-CTO paper's
reading) or any previous CABG; LM and ramus count as non-LAD by default.
"""

from cds.scoring.model import Item, ScoreDefinition, at_least, is_true, one_of

CL_SCORE = ScoreDefinition(
    id="cl_score",
    name="CL-score",
    outcome="first_attempt_success",
    outcome_label="success of a first-attempt CTO-PCI",
    citation="Alessandrino G et al. JACC Cardiovasc Interv 2015;8(12):1540-1548",
    url="https://doi.org/10.1016/j.jcin.2015.07.009",
    items=(
        # Xiao 2021 Table 1, footnote 4: previous CABG on the target vessel.
        Item(
            "prior_cabg_target_vessel",
            1.5,
            is_true("prior_cabg_target_vessel"),
            "patient",
            "prior CABG grafting the target vessel",
        ),
        Item("prior_mi", 1, is_true("prior_mi"), "patient", "previous myocardial infarction"),
        Item(
            "blunt_stump",
            1,
            one_of("stump", "blunt", "no_stump"),
            "lesion",
            "blunt or invisible stump",
        ),
        Item(
            "severe_calcification",
            2,
            one_of("calcification", "severe"),
            "lesion",
            "severe calcification",
        ),
        Item(
            "non_lad",
            1,
            one_of("target_vessel", "LM", "LCX", "RCA", "RAMUS", "GRAFT"),
            "lesion",
            "target vessel other than the LAD",
        ),
        Item(
            "occlusion_length_ge_20mm",
            1.5,
            at_least("occlusion_length_mm", 20),
            "lesion",
            "occlusion length ≥ 20 mm",
        ),
    ),
    points_range=(0, 8),
)
