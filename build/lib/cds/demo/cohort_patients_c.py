"""Index patients pt17–pt24: PCI without findings, re-try lesions, conflicting occlusion lengths,
site-entered overrides, the ostium as the order's target site.

Each expectation is the clinical reading of the record as designed (inputs.md rules); reasons cite the
resource that decides it.
"""

from __future__ import annotations

from cds.demo import fhir_build as fb
from cds.demo.case import DCM_CALCIFICATION, NCDR_LESION_LENGTH, Case
from cds.demo.fhir_build import boolean, integer, local_value, mm, severity

ANGIO = ("93454", "Coronary angiography (paraphrase)")  # diagnostic only: not a PCI
CTO_PCI = (fb.CTO_PCI_CPT, fb.CTO_PCI_DISPLAY)


def pt17() -> Case:
    c = Case(
        "pt17",
        "Proximal-LCX target; stent status Z95.5 (dotted ICD-10-CM), no lesion finding",
        operator="op-expert",
        index_date="2026-11-18",
        target=fb.PROX_LCX,
        gender="male",
        born="1944-12-01",
        age=81,
        name=("Quint", "Walter"),
    )
    c.condition(
        "pci",
        fb.ICD10CM,
        "Z95.5",
        "Presence of coronary angioplasty implant and graft",
        on="2019-07-22",
        onset=False,
    )
    c.expect(
        "in_stent_occlusion",
        None,
        "coronary stent recorded (Z95.5) but no lesion finding on in-stent occlusion",
    )
    return c


def pt18() -> Case:
    c = Case(
        "pt18",
        "Proximal-LAD target; angioplasty status Z9861 (no dot); complete local findings",
        operator="op-override",
        index_date="2026-11-09",
        target=fb.PROX_LAD,
        gender="female",
        born="1963-07-07",
        age=63,
        name=("Rossi", "Chiara"),
    )
    c.condition(
        "pci", fb.ICD10CM, "Z9861", "Coronary angioplasty status", on="2020-10-10", onset=False
    )
    on = "2026-10-30"
    c.finding("stump", local_value("blunt"), on=on)
    c.finding("proximal_cap_ambiguity", boolean(False), on=on)
    c.finding("calcification", local_value("severe"), on=on)
    c.finding("bend_gt_45_in_occlusion", boolean(True), on=on)
    c.finding("tortuosity", severity("severe"), on=on)
    c.finding("occlusion_length_mm", mm(40), on=on)
    c.finding("distal_vessel_disease", boolean(True), on=on)
    c.finding("rentrop_grade", integer(1), on=on)
    c.finding("interventional_collaterals", boolean(True), on=on)
    c.finding("ostial_location", boolean(False), on=on)
    why = "LAD finding 2026-10-30"
    c.expect("stump", "blunt", f"stump = blunt ({why})")
    c.expect("proximal_cap_ambiguity", False, f"proximal-cap-ambiguity = false ({why})")
    c.expect("calcification", "severe", f"calcification-grade = severe ({why})")
    c.expect("bend_gt_45_in_occlusion", True, f"bend-gt-45 = true ({why})")
    c.expect("tortuosity", "severe", f"tortuosity-grade SNOMED 24484000 Severe ({why})")
    c.expect("occlusion_length_mm", 40, f"occlusion-length 40 mm ({why})")
    c.expect("distal_vessel_disease", True, f"distal-vessel-disease = true ({why})")
    c.expect("rentrop_grade", 1, f"rentrop-grade = 1 ({why})")
    c.expect("interventional_collaterals", True, f"interventional-collaterals = true ({why})")
    c.expect("ostial_location", False, f"ostial-cto = false ({why})")
    c.expect(
        "in_stent_occlusion",
        None,
        "prior angioplasty (Z9861) but no lesion finding on in-stent occlusion",
    )
    return c


def pt19() -> Case:
    c = Case(
        "pt19",
        "RCA target; failed CTO-PCI on the RCA in March 2026 (re-try)",
        operator="op-expert",
        index_date="2026-09-14",
        target=fb.RCA,
        gender="male",
        born="1959-09-13",
        age=67,
        name=("Schulz", "Dieter"),
    )
    c.procedure(
        "cto_pci",
        fb.CPT,
        *CTO_PCI,
        on="2026-03-10",
        sites=(fb.PROX_RCA,),
        outcome=fb.UNSUCCESSFUL,
        performer="op-outside",
    )
    c.expect("retry_lesion", True, "CTO-PCI 2026-03-10 on the RCA, outcome Unsuccessful")
    c.expect(
        "in_stent_occlusion",
        None,
        "earlier PCI attempt on record; no lesion finding on in-stent occlusion",
    )
    return c


def pt20() -> Case:
    c = Case(
        "pt20",
        "LAD target; failed CTO-PCI on the LCX is not a re-try; in-stent-occlusion = false",
        operator="op-failing",
        index_date="2026-10-27",
        target=fb.LAD,
        gender="female",
        born="1950-01-25",
        age=76,
        name=("Tanaka", "Yuki"),
    )
    c.procedure(
        "cto_pci",
        fb.CPT,
        *CTO_PCI,
        on="2025-12-01",
        sites=(fb.LCX,),
        outcome=fb.UNSUCCESSFUL,
        performer="op-outside",
    )
    c.finding("in_stent_occlusion", boolean(False), on="2026-10-10")
    c.expect("retry_lesion", False, "the failed CTO-PCI (2025-12-01) was on the LCX, not the LAD")
    c.expect("in_stent_occlusion", False, "in-stent-occlusion = false for the LAD occlusion")
    return c


def pt21() -> Case:
    c = Case(
        "pt21",
        "Mid-LAD target; re-try and retrograde approach from site-entered findings",
        operator="op-nohistory",
        index_date="2026-09-28",
        target=fb.MID_LAD,
        gender="male",
        born="1949-08-08",
        age=77,
        name=("Ulrich", "Karl"),
    )
    on = "2026-09-15"
    c.finding("retry_lesion", boolean(True), on=on)
    c.finding("retrograde_approach", boolean(True), on=on)
    c.finding("in_stent_occlusion", boolean(False), on=on)
    c.finding("interventional_collaterals", boolean(True), on=on)
    c.finding("rentrop_grade", integer(2), on=on)
    c.expect("retry_lesion", True, "retry-lesion = true (earlier failed attempt elsewhere)")
    c.expect("retrograde_approach", True, "retrograde-approach = true (planned)")
    c.expect("in_stent_occlusion", False, "in-stent-occlusion = false (LAD finding)")
    c.expect("interventional_collaterals", True, "interventional-collaterals = true (LAD)")
    c.expect("rentrop_grade", 2, "rentrop-grade = 2 (LAD finding 2026-09-15)")
    return c


def pt22() -> Case:
    c = Case(
        "pt22",
        "Proximal-LAD target; two occlusion lengths (newest wins), newer one entered-in-error",
        operator="op-expert",
        index_date="2026-09-01",
        target=fb.PROX_LAD,
        gender="female",
        born="1961-09-01",
        age=65,
        name=("Varga", "Zsófia"),
    )
    c.procedure("other", fb.CPT, *ANGIO, on="2026-02-10")
    c.procedure("other", fb.CPT, *ANGIO, on="2026-08-20")
    c.finding("occlusion_length_mm", mm(28), on="2026-02-10")
    on = "2026-08-20"
    c.finding("occlusion_length_mm", mm(18), on=on)
    c.finding("occlusion_length_mm", mm(40), on="2026-08-25", status="entered-in-error")
    c.finding("calcification", severity("moderate"), on=on, code=DCM_CALCIFICATION)
    c.finding("tortuosity", severity("mild"), on=on)
    c.finding("stump", local_value("tapered"), on=on)
    c.expect(
        "occlusion_length_mm",
        18,
        "most recent length 18 mm (2026-08-20) over 28 mm (2026-02-10); 40 mm entered-in-error",
    )
    c.expect("calcification", "moderate", "DCM 122132 Severity of Calcification = Moderate (LAD)")
    c.expect("tortuosity", "mild", "tortuosity-grade SNOMED 255604002 Mild (LAD)")
    c.expect("stump", "tapered", "stump = tapered (LAD finding 2026-08-20)")
    c.expect("in_stent_occlusion", False, "only diagnostic angiographies: no stent or PCI ever")
    return c


def pt23() -> Case:
    c = Case(
        "pt23",
        "LCX target; very difficult lesion, NCDR lesion length 45 mm, ostial-cto; cath report",
        operator="op-override",
        index_date="2026-10-12",
        target=fb.LCX,
        gender="male",
        born="1952-05-05",
        age=74,
        name=("Weber", "Jürgen"),
    )
    on = "2026-09-30"
    ids = [
        c.finding("stump", local_value("blunt"), on=on),
        c.finding("proximal_cap_ambiguity", boolean(True), on=on),
        c.finding("calcification", local_value("mild"), on=on),
        c.finding("bend_gt_45_in_occlusion", boolean(True), on=on),
        c.finding("tortuosity", severity("severe"), on=on),
        c.finding("occlusion_length_mm", mm(45), on=on, code=NCDR_LESION_LENGTH),
        c.finding("distal_vessel_disease", boolean(True), on=on),
        c.finding("rentrop_grade", integer(0), on=on),
        c.finding("interventional_collaterals", boolean(True), on=on),
        c.finding("ostial_location", boolean(True), on=on),
    ]
    c.report(ids, on)
    why = "cath report 2026-09-30, LCX"
    c.expect("stump", "blunt", f"stump = blunt ({why})")
    c.expect("proximal_cap_ambiguity", True, f"proximal-cap-ambiguity = true ({why})")
    c.expect("calcification", "mild", f"calcification-grade = mild ({why})")
    c.expect("bend_gt_45_in_occlusion", True, f"bend-gt-45 = true ({why})")
    c.expect("tortuosity", "severe", f"tortuosity-grade SNOMED 24484000 Severe ({why})")
    c.expect("occlusion_length_mm", 45, f"NCDR 100013030 Lesion Length 45 mm ({why})")
    c.expect("distal_vessel_disease", True, f"distal-vessel-disease = true ({why})")
    c.expect("rentrop_grade", 0, f"rentrop-grade = 0 ({why})")
    c.expect("interventional_collaterals", True, f"interventional-collaterals = true ({why})")
    c.expect("ostial_location", True, f"ostial-cto = true ({why})")
    return c


def pt24() -> Case:
    c = Case(
        "pt24",
        "Order bodySite = RCA ostium (ostial location from the order)",
        operator="op-failing",
        index_date="2026-09-08",
        target=fb.RCA_OSTIUM,
        gender="female",
        born="1956-09-08",
        age=70,
        name=("Xu", "Mei"),
    )
    c.finding("rentrop_grade", integer(2), on="2026-08-30", site=fb.RCA)
    c.expect(
        "ostial_location",
        True,
        "order bodySite SNOMED 56789007 is the RCA ostium (terminology §4.9)",
    )
    c.expect("rentrop_grade", 2, "rentrop-grade = 2 (RCA finding 2026-08-30)")
    return c


CASES = (pt17, pt18, pt19, pt20, pt21, pt22, pt23, pt24)
