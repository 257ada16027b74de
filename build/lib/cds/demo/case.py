"""One index patient of the cohort: its resources and the inputs a clinician reads from them.

Expected values are written by hand per case (`expect`); `finish` fills only the defaults that
inputs.md ("Absent from the record vs unknown") prescribes for an empty record, and refuses to finish
when a case records history or a target-vessel finding without an explicit expectation for it, so a
forgotten `expect` cannot silently become "not documented".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from cds.demo import fhir_build as fb
from cds.demo.fhir_build import Resource, Site, Value
from cds.scoring.inputs import INPUTS

Expected = tuple[bool | int | float | str | None, str]
"""(value, one-line reason); value None = unknown."""

HistoryKind = Literal["cabg", "mi", "pci", "cto_pci", "other"]

# inputs.md, in its order: the public contract, not the mapping under test.
INPUT_NAMES = tuple(spec.name for spec in INPUTS)
LESION_INPUTS = (
    "stump",
    "proximal_cap_ambiguity",
    "calcification",
    "bend_gt_45_in_occlusion",
    "tortuosity",
    "occlusion_length_mm",
    "distal_vessel_disease",
    "rentrop_grade",
    "interventional_collaterals",
    "ostial_location",
)
# Local lesion codes (terminology.md §4.10) per input; other inputs' local codes are overrides.
LOCAL_CODE = {
    "stump": "stump",
    "proximal_cap_ambiguity": "proximal-cap-ambiguity",
    "calcification": "calcification-grade",
    "bend_gt_45_in_occlusion": "bend-gt-45",
    "tortuosity": "tortuosity-grade",
    "occlusion_length_mm": "occlusion-length",
    "distal_vessel_disease": "distal-vessel-disease",
    "rentrop_grade": "rentrop-grade",
    "interventional_collaterals": "interventional-collaterals",
    "ostial_location": "ostial-cto",
    "in_stent_occlusion": "in-stent-occlusion",
    "retry_lesion": "retry-lesion",
    "prior_cabg_target_vessel": "prior-cabg-target-vessel",
    "retrograde_approach": "retrograde-approach",
}
# Standard lesion codes (terminology.md §4.3, §4.4).
DCM_CALCIFICATION = fb.coding(fb.DCM, "122132", "Severity of Calcification")
NCDR_LESION_LENGTH = fb.coding(fb.NCDR_Q, "100013030", "Lesion Length")
NCDR_SEVERE_CALCIFICATION = fb.coding(fb.NCDR_Q, "1000142350", "Severe Calcification")

_SEX = {"male": "male", "female": "female", "other": "other"}


@dataclass(frozen=True)
class FinishedCase:
    pid: str
    title: str
    order_id: str
    operator: str
    index_date: str
    resources: tuple[Resource, ...]
    expected: Mapping[str, Expected]


class Case:
    """Builds one index patient; resource ids are `<pid>-<kind>-<n>`, fixed by call order."""

    def __init__(
        self,
        pid: str,
        title: str,
        *,
        operator: str,
        index_date: str,
        target: Site,
        gender: str,
        born: str | None,
        age: int | None,
        name: tuple[str, str] | None = None,
    ) -> None:
        self.pid = pid
        self.title = title
        self.operator = operator
        self.index_date = index_date
        self.target = target
        self.resources: list[Resource] = []
        self.expected: dict[str, Expected] = {}
        self._history: set[HistoryKind] = set()
        self._findings: set[str] = set()
        self._counts: dict[str, int] = {}
        self._encounter: str | None = None
        family, given = name or (None, None)
        self.resources.append(fb.patient(pid, gender, born, family, given))
        if born is None or age is None:
            self.expect("age_years", None, "no Patient.birthDate")
        else:
            self.expect("age_years", age, f"born {born}, order authored {index_date}")
        sex = _SEX.get(gender)
        self.expect("sex", sex, f"Patient.gender = {gender}")
        self.expect(
            "target_vessel",
            target.group,
            f"order bodySite SNOMED {target.code} ({target.display}) is in the {target.group} group",
        )

    def _id(self, kind: str) -> str:
        self._counts[kind] = self._counts.get(kind, 0) + 1
        return f"{self.pid}-{kind}-{self._counts[kind]}"

    def days_before(self, when: str) -> int:
        return (date.fromisoformat(self.index_date) - date.fromisoformat(when[:10])).days

    def expect(self, name: str, value: bool | float | str | None, reason: str) -> None:
        if name not in INPUT_NAMES:
            raise ValueError(f"unknown input {name}")
        self.expected[name] = (value, reason)

    def admit(self, start: str) -> str:
        """The index stay: an inpatient Encounter that the order also references."""
        self._encounter = self._id("enc")
        self.resources.append(fb.encounter(self._encounter, self.pid, start))
        return self._encounter

    def condition(
        self,
        kind: HistoryKind,
        system: str,
        code: str,
        display: str,
        *,
        on: str,
        onset: bool = True,
        verification: str = "confirmed",
        clinical: str = "active",
        during_stay: bool = False,
    ) -> str:
        cid = self._id("cond")
        self.resources.append(
            fb.condition(
                cid,
                self.pid,
                fb.coding(system, code, display),
                on=on,
                onset=onset,
                verification=verification,
                clinical=clinical,
                encounter_id=self._encounter if during_stay else None,
            )
        )
        if verification == "confirmed":
            self._history.add(kind)
        return cid

    def procedure(
        self,
        kind: HistoryKind,
        system: str,
        code: str,
        display: str,
        *,
        on: str,
        sites: Sequence[Site] = (),
        status: str = "completed",
        outcome: str | None = None,
        performer: str | None = None,
    ) -> str:
        prid = self._id("proc")
        self.resources.append(
            fb.procedure(
                prid,
                self.pid,
                fb.coding(system, code, display),
                performed=on,
                status=status,
                sites=sites,
                performer=performer,
                outcome=outcome,
            )
        )
        if status == "completed":
            self._history.add(kind)
        return prid

    def finding(
        self,
        name: str,
        value: Value,
        *,
        on: str,
        site: Site | None = None,
        code: Resource | None = None,
        status: str = "final",
    ) -> str:
        """A lesion-level Observation; `site` defaults to the target, `code` to the local code."""
        where = site or self.target
        oid = self._id("obs")
        obs_code = code or fb.coding(fb.LOCAL, LOCAL_CODE[name])
        self.resources.append(
            fb.observation(oid, self.pid, obs_code, value, on=on, site=where, status=status)
        )
        if status == "final" and where.group == self.target.group:
            self._findings.add(name)
        return oid

    def report(self, results: Sequence[str], on: str) -> str:
        rid = self._id("report")
        self.resources.append(fb.cath_report(rid, self.pid, results, on))
        return rid

    def finish(self, operator_expected: Mapping[str, Expected]) -> FinishedCase:
        self._check_explicit()
        defaults: dict[str, Expected] = {
            "prior_cabg": (False, "no CABG in Conditions or Procedures (not documented)"),
            "prior_mi": (False, "no myocardial infarction in Conditions (not documented)"),
            "in_stent_occlusion": (False, "no coronary stent or PCI ever (not documented)"),
            "retry_lesion": (False, "no earlier CTO-PCI attempt (not documented)"),
            "retrograde_approach": (None, "not recorded (usually unknown before the procedure)"),
        }
        for name in LESION_INPUTS:
            defaults[name] = (None, "no finding recorded for the target vessel")
        if self.expected.get("prior_cabg", defaults["prior_cabg"])[0] is False:
            defaults["prior_cabg_target_vessel"] = (False, "prior_cabg is false")
        merged = {**defaults, **operator_expected, **self.expected}
        missing = [n for n in INPUT_NAMES if n not in merged]
        if missing:
            raise ValueError(f"{self.pid}: no expectation for {missing}")
        order_id = f"{self.pid}-order"
        self.resources.append(
            fb.cto_order(
                order_id, self.pid, self.operator, self.index_date, self.target, self._encounter
            )
        )
        return FinishedCase(
            pid=self.pid,
            title=self.title,
            order_id=order_id,
            operator=self.operator,
            index_date=self.index_date,
            resources=tuple(self.resources),
            expected={n: merged[n] for n in INPUT_NAMES},
        )

    def _check_explicit(self) -> None:
        need = set(self._findings & set(LOCAL_CODE))
        if "cabg" in self._history:
            need |= {"prior_cabg", "prior_cabg_target_vessel"}
        if "mi" in self._history:
            need.add("prior_mi")
        if self._history & {"pci", "cto_pci"}:
            need.add("in_stent_occlusion")
        if "cto_pci" in self._history:
            need.add("retry_lesion")
        missing = sorted(need - set(self.expected))
        if missing:
            raise ValueError(f"{self.pid}: record has data for {missing} but no expectation")
