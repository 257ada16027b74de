"""ORA score (Ostial location, Rentrop grade < 2, Age ≥ 75) of technical failure.

Source: Galassi AR et al. JACC Cardiovasc Interv 2016;9(9):911-922. Single operator, 1,073
procedures; AUC 0.728 / 0.772. Outcome: technical failure. Grade B (docs/spec/scores.md §6; the
Operator-CTO cohort mean of 1.31 fits 2 points for Rentrop < 2). Range 0–4. Bands: easy 0,
intermediate 1, difficult 2, very difficult 3–4; rates per band not published here.
"""

from cds.scoring.model import Band, Item, ScoreDefinition, at_least, is_true, less_than

ORA = ScoreDefinition(
    id="ora",
    name="ORA",
    outcome="technical_failure",
    outcome_label="technical failure of CTO-PCI",
    citation="Galassi AR et al. JACC Cardiovasc Interv 2016;9(9):911-922",
    url=None,  # no DOI in docs/spec/scores.md; not guessed
    items=(
        Item("ostial_location", 1, is_true("ostial_location"), "lesion", "ostial location"),
        Item(
            "rentrop_lt_2",
            2,
            less_than("rentrop_grade", 2),
            "lesion",
            "collateral filling Rentrop grade 0–1",
        ),
        Item("age_ge_75", 1, at_least("age_years", 75), "patient", "age ≥ 75 years"),
    ),
    points_range=(0, 4),
    bands=(
        Band("easy", "easy", 0),
        Band("intermediate", "intermediate", 1),
        Band("difficult", "difficult", 2),
        Band("very_difficult", "very difficult", None),
    ),
)
