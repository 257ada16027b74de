"""RECHARGE score (technical success of hybrid CTO-PCI).

Source: Maeremans J et al. Catheter Cardiovasc Interv 2018;91(2):192-202, as cited by the
Operator-CTO paper (Xiao 2021, reference 9; items from its Table 1, grade S). Range 0–6; no bands;
success per score value not published here (docs/spec/scores.md §4): points only.
"""

from cds.scoring.model import Item, ScoreDefinition, is_true, more_than, one_of

RECHARGE = ScoreDefinition(
    id="recharge",
    name="RECHARGE",
    outcome="technical_success",
    outcome_label="technical success of hybrid CTO-PCI",
    citation="Maeremans J et al. Catheter Cardiovasc Interv 2018;91(2):192-202",
    url=None,  # no DOI in docs/spec/scores.md; not guessed
    items=(
        Item(
            "blunt_stump",
            1,
            one_of("stump", "blunt", "no_stump"),
            "lesion",
            "blunt or invisible stump",
        ),
        Item(
            "calcification",
            1,
            one_of("calcification", "mild", "moderate", "severe"),
            "lesion",
            "calcification (any)",
        ),
        # Xiao 2021 groups RECHARGE's tortuosity with J-CTO's bend > 45° (scores.md §4).
        Item(
            "bending_ge_45",
            1,
            is_true("bend_gt_45_in_occlusion"),
            "lesion",
            "bend ≥ 45° within the occlusion",
        ),
        Item(
            "occlusion_length_gt_20mm",
            1,
            more_than("occlusion_length_mm", 20),
            "lesion",
            "occlusion length > 20 mm",
        ),
        Item(
            "distal_vessel_disease",
            1,
            is_true("distal_vessel_disease"),
            "lesion",
            "diseased distal landing zone",
        ),
        # Xiao 2021 Table 1, footnote 4: previous CABG with a graft to the target vessel.
        Item(
            "prior_cabg_target_vessel",
            1,
            is_true("prior_cabg_target_vessel"),
            "patient",
            "prior CABG grafting the target vessel",
        ),
    ),
    points_range=(0, 6),
)
