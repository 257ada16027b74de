"""The demo's own logic without servers: patient ids checked first, the whole card rendered."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from cds.cdshooks.response import CdsResponse, dump
from cds.demo.cohort_data import load_ndjson
from cds.demo.run import (
    UnknownPatientError,
    card_renderable,
    check_patients,
    cohort_patients,
    wait_for_ctrl_c,
)
from cds.output.cards import OVERRIDE_REASONS, REFERRAL_LABEL, build_card
from tests.output.card_cases import case_of, ctx, lesion


def test_cohort_patients_are_those_with_an_order() -> None:
    patients = cohort_patients(load_ndjson())
    assert patients[0] == "pt01"
    assert len(patients) == 32


def test_an_unknown_patient_is_refused_with_the_valid_ids() -> None:
    resources = load_ndjson()
    check_patients(["pt01", "pt32"], resources)
    with pytest.raises(UnknownPatientError) as caught:
        check_patients(["pt01", "pt99"], resources)
    message = str(caught.value)
    assert "pt99" in message
    assert "pt01, pt02" in message
    assert "\n" not in message


def test_the_whole_card_is_printed() -> None:
    card = build_card(case_of(lesion(5)), ctx())  # difficult or worse: a referral is offered
    body = dump(CdsResponse(cards=[card]))["cards"][0]
    out = io.StringIO()
    Console(file=out, width=200).print(card_renderable("p1", body))
    text = out.getvalue()
    assert card.summary in text
    assert f"Suggestion: {REFERRAL_LABEL}" in text
    assert "create ServiceRequest" in text
    assert "Link (smart): Review inputs and complete findings" in text
    assert "Link (absolute): Operator-CTO paper" in text
    for _, display in OVERRIDE_REASONS[:2]:
        assert display in text
    assert "Target:" in text


class _CtrlCWhileWriting(io.StringIO):
    """A terminal where Ctrl-C lands while "press Ctrl-C" is being written (the test of
    `demo --keep` sends it the moment it reads that line)."""

    interrupted = False

    def write(self, text: str) -> int:
        written = super().write(text)
        if "press Ctrl-C" in text and not self.interrupted:
            self.interrupted = True  # one Ctrl-C
            raise KeyboardInterrupt
        return written


def test_ctrl_c_while_the_invitation_is_written_still_stops_cleanly() -> None:
    out = _CtrlCWhileWriting()
    try:
        wait_for_ctrl_c(Console(file=out, width=200), {"FHIR base": "http://127.0.0.1:1/fhir"})
    except KeyboardInterrupt:
        pytest.fail("the Ctrl-C escaped: `cto-cds demo --keep` would exit 130, not 0")
    assert out.getvalue().splitlines()[-1] == "stopping"
