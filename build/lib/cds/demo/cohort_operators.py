"""The cohort's operators: Practitioners, their CTO-PCI history on other (history-only) patients, the
override Observations, and the operator inputs a clinician reads for an order on a given date.

Rules (inputs.md "Absent from the record vs unknown"; scores.md §1): years = first CTO-PCI as primary
operator → order date in whole years, a remainder of more than 6 months adds one; volume = all
CTO-PCIs ÷ years; last-year success = outcome 385669000 ÷ CTO-PCIs in the 365 days before the order.

Every history date avoids 2025-08-25 … 2025-11-25 and anything after 2026-08-25, so the 365-day window
of any order dated 2026-09-01 … 2026-11-20 holds exactly the `last_year` segment (plus, for the
newcomer, everything). Hence one designed answer per operator, whatever its orders' dates; only the
at-threshold operator's years depend on the date, by design (EXPECTED_BY_DATE).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from cds.demo import fhir_build as fb
from cds.demo.case import Expected
from cds.demo.fhir_build import Resource

HISTORY_SITES = (fb.PROX_RCA, fb.MID_LAD, fb.PROX_LCX, fb.MID_RCA, fb.PROX_LAD)


@dataclass(frozen=True)
class Segment:
    """`n` CTO-PCIs evenly spread over [start, end], `successes` of them with outcome Successful;
    the others alternate Unsuccessful / Partially successful (partial is not technical success)."""

    start: str
    end: str
    n: int
    successes: int


@dataclass(frozen=True)
class Operator:
    pid: str
    npi9: str
    family: str
    given: str
    role: str
    segments: tuple[Segment, ...] = ()
    hcpcs_every: int = 0  # every k-th procedure coded HCPCS C9607 instead of CPT 92943 (§5.1)


OPERATORS = (
    Operator(
        "op-expert",
        "164820350",
        "Achterberg",
        "Hanna",
        "expert: > 60/yr over > 5 years, last-year success ≥ 90 %",
        (
            Segment("2020-09-20", "2020-09-20", 1, 1),
            Segment("2020-10-01", "2025-08-20", 321, 300),
            Segment("2025-11-26", "2026-08-25", 50, 46),
        ),
        hcpcs_every=20,
    ),
    Operator(
        "op-newcomer",
        "172903418",
        "Bernal",
        "Tomás",
        "newcomer: first CTO-PCI 2026-02-15 (8 months before 2026-10-15)",
        (
            Segment("2026-02-15", "2026-02-15", 1, 1),
            Segment("2026-02-20", "2026-08-25", 23, 17),
        ),
    ),
    Operator(
        "op-threshold",
        "138456027",
        "Castellano",
        "Irene",
        "exactly at the thresholds on 2026-10-15: 5 years, 60/yr, 90 %",
        (
            Segment("2022-03-15", "2022-03-15", 1, 1),
            Segment("2022-04-01", "2025-08-20", 239, 220),
            Segment("2025-11-26", "2026-08-25", 60, 54),
        ),
    ),
    Operator(
        "op-failing",
        "151237864",
        "Dimitriou",
        "Nikos",
        "failing last year: 15 successes out of 25",
        (
            Segment("2021-01-10", "2021-01-10", 1, 1),
            Segment("2021-02-01", "2025-08-20", 94, 80),
            Segment("2025-11-26", "2026-08-25", 25, 15),
        ),
    ),
    Operator("op-nohistory", "119384752", "Eriksen", "Lars", "no CTO-PCI history, no override"),
    Operator(
        "op-override", "186027591", "Fontaine", "Claire", "experience from override Observations"
    ),
    # Performed the earlier procedures recorded on index patients; never an index operator.
    Operator(
        "op-outside", "127650943", "Grünberg", "Otto", "outside operator of earlier procedures"
    ),
)
OPERATOR_IDS = tuple(o.pid for o in OPERATORS)

# Override Observations (terminology.md §5.3): units as the site enters them (1, %).
OVERRIDES = (
    ("volume", "operator-annual-cto-volume", 85, "1", "final"),
    ("years", "operator-cto-years", 12, "1", "final"),
    ("success", "operator-cto-success-rate", 92, "%", "final"),
    ("volume-old", "operator-annual-cto-volume", 150, "1", "entered-in-error"),
)

_UNKNOWN: Mapping[str, Expected] = {
    "operator_annual_cto_volume": (None, "no CTO-PCI history, registry entry or override"),
    "operator_cto_years": (None, "no CTO-PCI history, registry entry or override"),
    "operator_last_year_success_rate": (None, "no CTO-PCI history, registry entry or override"),
}

# Written from the design above, not computed: the test checks the design adds up.
EXPECTED: Mapping[str, Mapping[str, Expected]] = {
    "op-expert": {
        "operator_annual_cto_volume": (62, "372 CTO-PCIs (18 coded HCPCS C9607) ÷ 6 years"),
        "operator_cto_years": (
            6,
            "first CTO-PCI 2020-09-20: 5 y 11 m – 6 y 2 m before the order → 6",
        ),
        "operator_last_year_success_rate": (
            0.92,
            "46 successful ÷ 50 CTO-PCIs in the last 365 days (entered-in-error one ignored)",
        ),
    },
    "op-newcomer": {
        "operator_annual_cto_volume": (24, "24 CTO-PCIs ÷ 1 year"),
        "operator_cto_years": (1, "first CTO-PCI 2026-02-15: 6.5–9 months before the order → 1"),
        "operator_last_year_success_rate": (
            0.75,
            "18 successful ÷ 24 CTO-PCIs, all in the last year",
        ),
    },
    "op-failing": {
        "operator_annual_cto_volume": (20, "120 CTO-PCIs ÷ 6 years"),
        "operator_cto_years": (
            6,
            "first CTO-PCI 2021-01-10: 5 y 7 m – 5 y 10 m before the order → 6",
        ),
        "operator_last_year_success_rate": (
            0.6,
            "15 successful ÷ 25 CTO-PCIs in the last 365 days (partial success is not success)",
        ),
    },
    "op-nohistory": _UNKNOWN,
    "op-override": {
        "operator_annual_cto_volume": (85, "override Observation operator-annual-cto-volume = 85"),
        "operator_cto_years": (12, "override Observation operator-cto-years = 12"),
        "operator_last_year_success_rate": (
            0.92,
            "override Observation operator-cto-success-rate = 92 %",
        ),
    },
}
_THRESHOLD_SUCCESS: Expected = (
    0.9,
    "54 successful ÷ 60 CTO-PCIs in the last 365 days (not-done one ignored)",
)
EXPECTED_BY_DATE: Mapping[tuple[str, str], Mapping[str, Expected]] = {
    ("op-threshold", "2026-10-15"): {
        "operator_annual_cto_volume": (60, "300 CTO-PCIs ÷ 5 years"),
        "operator_cto_years": (5, "first CTO-PCI 2022-03-15: 4 y 7 m before the order → 5"),
        "operator_last_year_success_rate": _THRESHOLD_SUCCESS,
    },
    ("op-threshold", "2026-09-15"): {
        "operator_annual_cto_volume": (75, "300 CTO-PCIs ÷ 4 years"),
        "operator_cto_years": (
            4,
            "first CTO-PCI 2022-03-15: exactly 4 y 6 m before the order, not more → 4",
        ),
        "operator_last_year_success_rate": _THRESHOLD_SUCCESS,
    },
}


def operator_expected(operator: str, index_date: str) -> Mapping[str, Expected]:
    if (operator, index_date) in EXPECTED_BY_DATE:
        return EXPECTED_BY_DATE[(operator, index_date)]
    if operator not in EXPECTED:
        raise ValueError(f"no designed expectation for {operator} on {index_date}")
    return EXPECTED[operator]


def _spread(segment: Segment) -> Iterator[tuple[str, bool]]:
    """(date, successful) for each procedure of the segment, failures evenly interleaved."""
    start, end = date.fromisoformat(segment.start), date.fromisoformat(segment.end)
    span = (end - start).days
    failures = segment.n - segment.successes
    failed = {(j * segment.n) // failures for j in range(failures)} if failures else set()
    for i in range(segment.n):
        day = start + timedelta(days=(span * i) // max(segment.n - 1, 1))
        yield day.isoformat(), i not in failed


def _history(op: Operator) -> Iterator[Resource]:
    slug = op.pid.removeprefix("op-")
    k = 0
    non_success = 0
    for segment in op.segments:
        for when, ok in _spread(segment):
            k += 1
            if ok:
                outcome = fb.SUCCESSFUL
            else:
                outcome = fb.UNSUCCESSFUL if non_success % 2 == 0 else fb.PARTIAL
                non_success += 1
            hcpcs = op.hcpcs_every and k % op.hcpcs_every == 0
            code = (
                fb.coding(fb.HCPCS, "C9607", "CTO revascularization with DES, single vessel")
                if hcpcs
                else fb.coding(fb.CPT, fb.CTO_PCI_CPT, fb.CTO_PCI_DISPLAY)
            )
            yield from _history_patient(slug, k, code, when, op.pid, outcome)


def _history_patient(
    slug: str,
    k: int,
    code: Resource,
    when: str,
    operator: str,
    outcome: str | None,
    status: str = "completed",
) -> Iterator[Resource]:
    pid = f"hx-{slug}-{k:03d}"
    born = f"{1938 + (k * 7) % 40}-{1 + k % 12:02d}-{1 + k % 28:02d}"
    yield fb.patient(pid, "male" if k % 3 else "female", born, None, None)
    site = HISTORY_SITES[k % len(HISTORY_SITES)]
    yield fb.procedure(
        f"{pid}-cto",
        pid,
        code,
        performed=when,
        status=status,
        sites=(site,),
        performer=operator,
        outcome=outcome,
    )


def operator_resources() -> list[Resource]:
    """Practitioners, history patients with their CTO-PCIs, and override Observations."""
    out: list[Resource] = [
        fb.practitioner(o.pid, fb.npi(o.npi9), o.family, o.given) for o in OPERATORS
    ]
    for op in OPERATORS:
        out.extend(_history(op))
    cpt = fb.coding(fb.CPT, fb.CTO_PCI_CPT, fb.CTO_PCI_DISPLAY)
    # Records that must be ignored: would change the last-year rate if counted.
    out.extend(
        _history_patient(
            "expert",
            900,
            cpt,
            "2026-05-05",
            "op-expert",
            fb.UNSUCCESSFUL,
            status="entered-in-error",
        )
    )
    out.extend(
        _history_patient(
            "threshold", 900, cpt, "2026-06-10", "op-threshold", None, status="not-done"
        )
    )
    for key, code, value, unit, status in OVERRIDES:
        out.append(
            fb.operator_override(
                f"op-override-{key}",
                "op-override",
                code,
                fb.quantity(value, unit),
                "2026-07-01",
                status=status,
            )
        )
    return out
