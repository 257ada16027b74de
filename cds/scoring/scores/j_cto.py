"""J-CTO score (Multicenter CTO Registry of Japan).

Source: Morino Y et al. JACC Cardiovasc Interv 2011;4(2):213-221, doi:10.1016/j.jcin.2010.09.024.
494 native CTO lesions. Outcome: guidewire crossing within 30 minutes (not technical success).
Range 0–5. Bands: easy 0, intermediate 1, difficult 2, very difficult ≥ 3 (docs/spec/scores.md §2,
grade B); crossing-within-30-min rates 88 / 67 / 42 / 10 % (grade B, no per-band counts published).
"""

from cds.scoring.model import (
    Band,
    Item,
    PublishedEstimate,
    ScoreDefinition,
    at_least,
    is_true,
    one_of,
)

_NOTE = "original J-CTO cohort (Morino 2011); per-band counts not given"

J_CTO = ScoreDefinition(
    id="j_cto",
    name="J-CTO",
    outcome="guidewire_crossing_30min",
    outcome_label="guidewire crossing within 30 minutes",
    citation="Morino Y et al. JACC Cardiovasc Interv 2011;4(2):213-221",
    url="https://doi.org/10.1016/j.jcin.2010.09.024",
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
        Item(
            "bending_gt_45",
            1,
            is_true("bend_gt_45_in_occlusion"),
            "lesion",
            "bend > 45° within the occlusion",
        ),
        Item(
            "occlusion_length_ge_20mm",
            1,
            at_least("occlusion_length_mm", 20),
            "lesion",
            "occlusion length ≥ 20 mm",
        ),
        Item("retry_lesion", 1, is_true("retry_lesion"), "lesion", "retry of a failed attempt"),
    ),
    points_range=(0, 5),
    bands=(
        Band("easy", "easy", 0, PublishedEstimate(0.88, note=_NOTE)),
        Band("intermediate", "intermediate", 1, PublishedEstimate(0.67, note=_NOTE)),
        Band("difficult", "difficult", 2, PublishedEstimate(0.42, note=_NOTE)),
        Band("very_difficult", "very difficult", None, PublishedEstimate(0.10, note=_NOTE)),
    ),
)
