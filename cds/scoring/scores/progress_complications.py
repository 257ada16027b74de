"""PROGRESS-CTO complications score (major peri-procedural complications).

Source: Danek BA et al. J Am Heart Assoc 2016;5(10):e004272, doi:10.1161/JAHA.116.004272. 1,569
CTO-PCIs. Outcome: major peri-procedural complication. Grade A (docs/spec/scores.md §8). Range 0–6.
Bands: low 0–2 (0.4 % derivation / 0.0 % validation), intermediate 3–4 (1.8 % / 2.5 %), high ≥ 5
(6.5 % / 6.8 %). The retrograde approach is usually unknown before the procedure, so a range.
"""

from cds.scoring.model import (
    Band,
    Item,
    PublishedEstimate,
    ScoreDefinition,
    at_least,
    is_true,
    more_than,
)

PROGRESS_COMPLICATIONS = ScoreDefinition(
    id="progress_complications",
    name="PROGRESS-CTO complications",
    outcome="major_complication",
    outcome_label="major peri-procedural complication",
    citation="Danek BA et al. J Am Heart Assoc 2016;5(10):e004272",
    url="https://doi.org/10.1161/JAHA.116.004272",
    items=(
        Item("age_gt_65", 3, more_than("age_years", 65), "patient", "age > 65 years"),
        Item(
            "occlusion_length_ge_23mm",
            2,
            at_least("occlusion_length_mm", 23),
            "lesion",
            "occlusion length ≥ 23 mm",
        ),
        Item(
            "retrograde_approach",
            1,
            is_true("retrograde_approach"),
            "procedure",
            "retrograde approach",
        ),
    ),
    points_range=(0, 6),
    bands=(
        # Danek 2016: complication rate per band, derivation (validation in the note).
        Band("low", "low", 2, PublishedEstimate(0.004, note="derivation cohort; validation 0.0 %")),
        Band(
            "intermediate",
            "intermediate",
            4,
            PublishedEstimate(0.018, note="derivation cohort; validation 2.5 %"),
        ),
        Band(
            "high",
            "high",
            None,
            PublishedEstimate(0.065, note="derivation cohort; validation 6.8 %"),
        ),
    ),
)
