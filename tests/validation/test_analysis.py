"""Per-score analysis: exclusions per score, the shipped example cohort, the experience split."""

from __future__ import annotations

from pathlib import Path

import pytest

from cds.scoring.engine import score_all
from cds.validation.analysis import analyse
from cds.validation.cohort import read_cohort

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "xiao2021_bands.csv"

# Xiao 2021 Table 2 (docs/spec/scores.md §1): technical success by Operator-CTO band.
PAPER_BANDS = {
    "easy": (102, 103),
    "moderate": (21, 24),
    "difficult": (7, 13),
    "extremely_difficult": (1, 4),
}


def test_example_cohort_reproduces_the_band_table_and_grouped_auc() -> None:
    result = analyse(read_cohort(EXAMPLE.read_text(), "example"))
    primary = result.scores["operator_cto"]
    assert {k: (b.successes, b.n) for k, b in primary.bands.items()} == PAPER_BANDS
    assert (primary.n, primary.events) == (144, 131)
    # Grouped AUC from the band counts: 1539 / 1703 (docs/validation.md).
    assert primary.auc == pytest.approx(0.9037, abs=5e-5)
    assert primary.auc_ci95 is not None
    assert primary.auc_ci95[0] < 0.901 < primary.auc_ci95[1]
    for band, b in primary.bands.items():
        assert b.published is not None
        assert b.published.as_success == pytest.approx(PAPER_BANDS[band][0] / PAPER_BANDS[band][1])
    assert primary.hl_grouping == "score_value"


def test_example_rows_score_in_their_band() -> None:
    cohort = read_cohort(EXAMPLE.read_text(), "example")
    for lesion in cohort.lesions:
        result = score_all(lesion.inputs).scores["operator_cto"]
        assert result.points is not None
        assert result.band is not None


def _csv(rows: list[str]) -> str:
    head = (
        "stump,calcification,tortuosity,occlusion_length_mm,distal_vessel_disease,rentrop_grade,"
        "in_stent_occlusion,ostial_location,prior_cabg_target_vessel,operator_annual_cto_volume,"
        "operator_cto_years,operator_last_year_success_rate,technical_success\n"
    )
    return head + "\n".join(rows) + "\n"


EASY = "tapered,none,none,10,0,2,0,0,0,80,8,0.95"  # −4: expert on an easy lesion
HARD = "blunt,severe,severe,30,1,0,1,1,1,10,1,0.5"  # 9: novice on the hardest lesion


def test_unknown_inputs_exclude_per_score_with_reasons() -> None:
    rows = [f"{EASY},1"] * 6 + [f"{HARD},0"] * 3 + [f"{HARD},1"]
    rows.append("tapered,,none,10,0,2,0,0,0,80,8,0.95,1")  # calcification unknown
    result = analyse(read_cohort(_csv(rows), "c"))
    primary = result.scores["operator_cto"]
    assert primary.n == 10
    assert primary.excluded.count == 1
    assert primary.excluded.reasons == {"calcification": 1}
    # J-CTO needs inputs this file has no column for: all excluded, none imputed.
    assert result.scores["j_cto"].n == 0
    assert result.scores["j_cto"].excluded.count == 11
    assert result.scores["j_cto"].auc is None


def test_experience_split_compares_lesion_points_with_the_total() -> None:
    # Same lesions, different operators: the total separates what the lesion points cannot.
    mid_expert = "blunt,mild,none,25,0,2,0,0,0,80,8,0.95"  # lesion 3, operator −4
    mid_novice = "blunt,mild,none,25,0,2,0,0,0,10,1,0.5"  # lesion 3, operator 0
    rows = [f"{mid_expert},1"] * 8 + [f"{mid_novice},0"] * 5 + [f"{mid_novice},1"] * 3
    result = analyse(read_cohort(_csv(rows), "c"))
    split = result.scores["operator_cto"].experience
    assert split is not None
    assert split.n == 16
    assert split.lesion_points.auc == pytest.approx(0.5)
    assert split.total.auc is not None
    assert split.total.auc > 0.8
    assert split.total_vs_lesion is not None
    assert split.total_vs_lesion.diff > 0.3
    assert set(split.bands_by_operator_points) == {"-4", "0"}
    assert split.bands_by_operator_points["0"]["moderate"].n == 8


def test_statistics_and_analysis_do_no_io() -> None:
    from tests.test_architecture import _module_names, pure_modules

    # Both claim purity, so the architecture test checks them for I/O like the core.
    assert {"validation/stats.py", "validation/analysis.py"} <= pure_modules()
    # The cohort reader parses text; spooling to disk belongs to the batch package.
    assert not _module_names(ROOT / "cds" / "validation" / "cohort.py") & {"sqlite3", "tempfile"}
