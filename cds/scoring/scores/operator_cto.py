"""Operator-CTO score: lesion difficulty lowered by the operator's CTO-PCI experience.

Source: Xiao B, Hong L, Cai X, Zhu H, Li B, Shao L. A Novel Clinical Scoring Model for Interventional
Therapy in Chronic Total Occlusion of the Coronary Artery. J Interv Cardiol 2021;2021:9988943,
doi:10.1155/2021/9988943 (CC BY 4.0). 130 patients / 144 lesions, 10 operators, one centre.
Outcome: technical success of CTO-PCI. Items, weights and bands: the paper's Table 2 (the score sheet);
band success counts: its Table 6 and Figure 1(b) (docs/spec/scores.md §1, grade A). Range −4 … +9.
Bands: easy ≤ 2, moderate 3, difficult 4, extremely difficult ≥ 5.
"""

from cds.scoring.model import (
    Band,
    Item,
    PublishedEstimate,
    Scenario,
    ScoreDefinition,
    at_least,
    is_true,
    less_than,
    one_of,
)

# Xiao 2021 Table 6 / Figure 1(b): technical success by band in the derivation cohort
# (successes / lesions); Table 2 is the score sheet.
_NOTE = "single-centre derivation cohort (Xiao 2021, Table 6 / Figure 1(b))"

OPERATOR_CTO = ScoreDefinition(
    id="operator_cto",
    name="Operator-CTO",
    outcome="technical_success",
    outcome_label="technical success of CTO-PCI",
    citation="Xiao B et al. J Interv Cardiol 2021;2021:9988943",
    url="https://doi.org/10.1155/2021/9988943",
    items=(
        Item(
            "prior_cabg_target_vessel",
            1,
            is_true("prior_cabg_target_vessel"),
            "lesion",
            "prior CABG grafting the target vessel (≥ 3 months)",
        ),
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
        Item(
            "curvature",
            1,
            one_of("tortuosity", "moderate", "severe", unknown_when=("unseen",)),
            "lesion",
            "curvature: ≥ 2 bends > 70° or 1 bend > 90°",
        ),
        Item(
            "occlusion_length_ge_20mm",
            1,
            at_least("occlusion_length_mm", 20),
            "lesion",
            "occlusion length ≥ 20 mm",
        ),
        Item(
            "distal_vessel_disease",
            1,
            is_true("distal_vessel_disease"),
            "lesion",
            "distal vessel disease or distal lumen < 2 mm",
        ),
        Item(
            "rentrop_lt_2",
            1,
            less_than("rentrop_grade", 2),
            "lesion",
            "collateral filling Rentrop grade 0–1",
        ),
        Item(
            "in_stent_occlusion",
            1,
            is_true("in_stent_occlusion"),
            "lesion",
            "in-stent occlusion (> 3 months)",
        ),
        Item("ostial_location", 1, is_true("ostial_location"), "lesion", "ostial location"),
        Item(
            "operator_volume_ge_60",
            -1,
            at_least("operator_annual_cto_volume", 60),
            "operator",
            "operator's annual CTO-PCI volume ≥ 60",
        ),
        Item(
            "operator_years_ge_5",
            -1,
            at_least("operator_cto_years", 5),
            "operator",
            "operator's CTO-PCI practice ≥ 5 years",
        ),
        Item(
            "operator_success_ge_90",
            -2,
            at_least("operator_last_year_success_rate", 0.9),
            "operator",
            "operator's last-year CTO-PCI success ≥ 90 %",
        ),
    ),
    points_range=(-4, 9),
    bands=(
        Band("easy", "easy", 2, PublishedEstimate(102 / 103, 102, 103, _NOTE)),
        Band("moderate", "moderate", 3, PublishedEstimate(21 / 24, 21, 24, _NOTE)),
        Band("difficult", "difficult", 4, PublishedEstimate(7 / 13, 7, 13, _NOTE)),
        Band(
            "extremely_difficult",
            "extremely difficult",
            None,
            PublishedEstimate(1 / 4, 1, 4, _NOTE),
        ),
    ),
    scenarios=(
        # The three experience criteria of Xiao 2021 Table 2 at their thresholds (−4 in all).
        Scenario(
            "expert_operator",
            "an operator with ≥ 60 CTO-PCIs a year, ≥ 5 years and ≥ 90 % success last year",
            {
                "operator_annual_cto_volume": 60,
                "operator_cto_years": 5,
                "operator_last_year_success_rate": 0.9,
            },
        ),
    ),
    notes=(
        "Derived in 144 lesions at one centre (Nanchang, China): estimates are imprecise.",
        "AUC 0.901 (95 % CI 0.821–0.982) for technical success in the derivation cohort.",
    ),
)
