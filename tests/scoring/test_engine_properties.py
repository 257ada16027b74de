"""Properties of ranges: every completion of the unknown inputs lands inside [min, max] and `bands`."""

from __future__ import annotations

from typing import Any, cast

from hypothesis import given, settings
from hypothesis import strategies as st

from cds import INPUTS, score_json
from cds.scoring.inputs import InputSpec


def value_of(spec: InputSpec) -> st.SearchStrategy[Any]:
    if spec.kind == "boolean":
        return st.booleans()
    if spec.kind == "enum":
        return st.sampled_from(spec.values)
    high = spec.le if spec.le is not None else 120
    edges = [19.9, 20, 20.1, 22.9, 23, 59.9, 60, 4, 5, 0.899, 0.9, 65, 66, 69, 70, 74, 75]
    low = spec.ge or 0
    if spec.kind == "integer":
        return st.one_of(
            st.integers(int(low), int(high)),
            st.sampled_from([int(e) for e in edges if low <= e <= high and e == int(e)] or [0]),
        )
    return st.one_of(
        st.floats(low, high, allow_nan=False),
        st.sampled_from([e for e in edges if low <= e <= high]),
    )


FULL_CASE = st.fixed_dictionaries({spec.name: value_of(spec) for spec in INPUTS})


@settings(max_examples=300, deadline=None)
@given(full=FULL_CASE, hidden=st.sets(st.sampled_from([s.name for s in INPUTS])))
def test_every_completion_lies_in_the_range_and_its_bands(
    full: dict[str, Any], hidden: set[str]
) -> None:
    partial = cast(
        "dict[str, Any]", score_json({k: v for k, v in full.items() if k not in hidden})["scores"]
    )
    complete = cast("dict[str, Any]", score_json(full)["scores"])
    for score_id, known in complete.items():
        open_ = partial[score_id]
        if known["points"] is not None:
            assert open_["min"] <= known["points"] <= open_["max"], score_id
        else:  # an undeterminable item (tortuosity unseen) leaves a range even when all is known
            assert open_["min"] <= known["min"] <= known["max"] <= open_["max"], score_id
        assert set(known["bands"]) <= set(open_["bands"]), score_id
        if open_["band"] is not None:
            assert known["band"] == open_["band"], score_id
        assert set(open_["missing"]) == {
            i["input"] for i in open_["items"] if i["input"] in hidden
        }, score_id
        for open_item, known_item in zip(open_["items"], known["items"], strict=True):
            if open_item["present"] is not None:
                assert open_item["present"] == known_item["present"]
            else:
                assert open_item["input"] in hidden or full[open_item["input"]] == "unseen"


@settings(max_examples=200, deadline=None)
@given(full=FULL_CASE)
def test_known_inputs_give_a_point_total_and_one_band(full: dict[str, Any]) -> None:
    full["tortuosity"] = "mild" if full["tortuosity"] == "unseen" else full["tortuosity"]
    for score_id, result in cast("dict[str, Any]", score_json(full)["scores"]).items():
        assert result["points"] == result["min"] == result["max"], score_id
        assert result["missing"] == []
        assert len(result["bands"]) <= 1
        assert result["band"] == (result["bands"][0] if result["bands"] else None)
        total = sum(i["points"] for i in result["items"] if i["present"])
        assert result["points"] == total, score_id
