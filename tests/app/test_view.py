"""The page's live recompute (`/app/api/score`) and its server-rendered fragments."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from cds.app.chart import band_chart
from cds.scoring.engine import score_all
from cds.scoring.estimate import wilson_interval
from cds.scoring.inputs import parse_inputs
from cds.scoring.scores.operator_cto import OPERATOR_CTO
from tests.app.conftest import signed_in

EXAMPLE = Path(__file__).parents[2] / "examples" / "easy_lesion_expert_operator.json"


def _form(values: dict[str, Any]) -> dict[str, str]:
    """What the page's script sends: every control's string value ("" = unknown)."""
    out = {}
    for name, value in values.items():
        if isinstance(value, bool):
            out[name] = "true" if value else "false"
        else:
            out[name] = "" if value is None else str(value)
    return out


def test_entered_findings_change_the_band(client: TestClient) -> None:
    signed_in(client)
    easy = json.loads(EXAMPLE.read_text())
    first = client.post("/app/api/score", json={"inputs": _form(easy)})
    assert first.status_code == 200, first.text
    assert first.json()["band"] == "easy"
    hard = easy | {
        "stump": "blunt",
        "calcification": "severe",
        "occlusion_length_mm": 25,
        "operator_annual_cto_volume": 10,
        "operator_cto_years": 1,
        "operator_last_year_success_rate": 0.5,
    }
    second = client.post("/app/api/score", json={"inputs": _form(hard)}).json()
    expected = score_all(parse_inputs(hard)).scores[OPERATOR_CTO.id]
    assert second["band"] == expected.band != "easy"
    assert second["points"] == expected.points
    assert f'data-band="{expected.band}"' in second["result"]
    assert "technical success" in second["result"]
    assert "J-CTO" in second["comparators"]


def test_unknown_inputs_give_a_range_not_a_false(client: TestClient) -> None:
    signed_in(client)
    answer = client.post("/app/api/score", json={"inputs": {"stump": ""}}).json()
    assert answer["points"] is None
    assert answer["band"] is None
    assert "Unknown:" in answer["result"]
    assert " to " in answer["result"]


def test_bad_value_names_the_field_and_value(client: TestClient) -> None:
    signed_in(client)
    response = client.post(
        "/app/api/score", json={"inputs": {"rentrop_grade": "7", "stump": "round"}}
    )
    assert response.status_code == 400
    fields = {issue["field"]: issue["message"] for issue in response.json()["issues"]}
    assert "7" in fields["inputs.rentrop_grade"]
    assert "round" in fields["inputs.stump"]
    not_object = client.post("/app/api/score", json={"inputs": [1]})
    assert not_object.status_code == 400
    assert not_object.json()["issues"][0]["field"] == "inputs"


def test_a_body_that_is_not_an_object_is_named_as_sent(client: TestClient) -> None:
    signed_in(client)
    for body, shown in (("[]", "got []"), ("1", "got 1"), ('"x"', 'got "x"')):
        response = client.post(
            "/app/api/score", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400
        (issue,) = response.json()["issues"]
        assert issue["field"] == ""
        assert shown in issue["message"]  # said "got null" before


def test_a_lone_surrogate_is_named_not_a_500(client: TestClient) -> None:
    signed_in(client)
    for body in ('{"inputs": {"stump": "\\ud800"}}', '{"inputs": {"\\ud800": 1}}'):
        response = client.post(
            "/app/api/score", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 400, response.text
        assert "\\ud800" in response.text


def test_chart_draws_each_band_with_its_wilson_interval() -> None:
    svg = band_chart(OPERATOR_CTO, "difficult")
    assert svg.count('class="bar"') + svg.count('class="bar current"') == len(OPERATOR_CTO.bands)
    assert svg.count('class="bar current"') == 1
    assert 'data-band="difficult"' in svg
    for band in OPERATOR_CTO.bands:
        est = band.estimate
        assert est is not None
        assert est.successes is not None
        assert est.n is not None
        lo, hi = wilson_interval(est.successes, est.n)
        assert f"{est.successes}/{est.n}, 95 % CI {100 * lo:.0f} %–{100 * hi:.0f} %" in svg
    assert "— this lesion" in svg


def test_page_groups_every_input_with_unknown_marked(client: TestClient) -> None:
    signed_in(client)
    text = client.get("/app/").text
    for legend in ("Patient history", "Lesion findings", "Operator"):
        assert f"<legend>{legend}</legend>" in text
    assert 'id="in-rentrop_grade"' in text
    assert 'data-state="unknown"' in text
    assert 'src="/app/static/app.js"' in text
    assert "http://" not in text.split("<main")[0]
    assert client.get("/app/static/app.js").status_code == 200
