"""Index patients pt01–pt08: complete lesion findings (local, DICOM and NCDR codes), prior CABG with
grafts to and away from the target, a CABG < 3 months old, CABGs recorded without vessels.

Each expectation is the clinical reading of the record as designed (inputs.md rules); reasons cite the
resource that decides it.
"""

from __future__ import annotations

from cds.demo import fhir_build as fb
from cds.demo.case import DCM_CALCIFICATION, NCDR_LESION_LENGTH, NCDR_SEVERE_CALCIFICATION, Case
from cds.demo.fhir_build import boolean, integer, local_value, mm, severity

ANGIO = ("93454", "Coronary angiography (paraphrase)")  # diagnostic only: not a PCI


def pt01() -> Case:
    c = Case(
        "pt01",
        "Easy mid-LAD lesion, all local lesion codes in a cath report; angiography only",
        operator="op-expert",
        index_date="2026-09-03",
        target=fb.MID_LAD,
        gender="female",
        born="1961-05-20",
        age=65,
        name=("Andersen", "Maja"),
    )
    c.procedure("other", fb.CPT, *ANGIO, on="2026-08-20")
    on = "2026-08-20"
    ids = [
        c.finding("stump", local_value("tapered"), on=on),
        c.finding("proximal_cap_ambiguity", boolean(False), on=on),
        c.finding("calcification", local_value("none"), on=on),
        c.finding("bend_gt_45_in_occlusion", boolean(False), on=on),
        c.finding("tortuosity", severity("none"), on=on),
        c.finding("occlusion_length_mm", mm(12), on=on),
        c.finding("distal_vessel_disease", boolean(False), on=on),
        c.finding("rentrop_grade", integer(3), on=on),
        c.finding("interventional_collaterals", boolean(True), on=on),
        c.finding("ostial_location", boolean(False), on=on),
    ]
    c.report(ids, on)
    why = "cath report 2026-08-20, mid LAD"
    c.expect("stump", "tapered", f"stump = tapered ({why})")
    c.expect("proximal_cap_ambiguity", False, f"proximal-cap-ambiguity = false ({why})")
    c.expect("calcification", "none", f"calcification-grade = none ({why})")
    c.expect("bend_gt_45_in_occlusion", False, f"bend-gt-45 = false ({why})")
    c.expect("tortuosity", "none", f"tortuosity-grade SNOMED 260413007 None ({why})")
    c.expect("occlusion_length_mm", 12, f"occlusion-length 12 mm ({why})")
    c.expect("distal_vessel_disease", False, f"distal-vessel-disease = false ({why})")
    c.expect("rentrop_grade", 3, f"rentrop-grade = 3 ({why})")
    c.expect("interventional_collaterals", True, f"interventional-collaterals = true ({why})")
    c.expect("ostial_location", False, f"ostial-cto = false ({why})")
    c.expect(
        "in_stent_occlusion",
        False,
        "only a diagnostic angiography (CPT 93454): no stent or PCI ever",
    )
    return c


def pt02() -> Case:
    c = Case(
        "pt02",
        "Difficult proximal-RCA lesion, standard DCM/NCDR codes; old MI I25.2",
        operator="op-expert",
        index_date="2026-09-10",
        target=fb.PROX_RCA,
        gender="male",
        born="1956-09-10",
        age=70,
        name=("Brandt", "Felix"),
    )
    c.condition("mi", fb.ICD10CM, "I25.2", "Old myocardial infarction", on="2019-03-14")
    c.expect("prior_mi", True, "ICD-10-CM I25.2 old MI, onset 2019-03-14")
    on = "2026-08-28"
    c.finding("stump", local_value("blunt"), on=on)
    c.finding("proximal_cap_ambiguity", boolean(True), on=on)
    c.finding("calcification", severity("severe"), on=on, code=DCM_CALCIFICATION)
    c.finding("bend_gt_45_in_occlusion", boolean(True), on=on)
    c.finding("tortuosity", severity("moderate"), on=on)
    c.finding("occlusion_length_mm", mm(32), on=on, code=NCDR_LESION_LENGTH)
    c.finding("distal_vessel_disease", boolean(True), on=on)
    c.finding("rentrop_grade", integer(1), on=on)
    c.finding("interventional_collaterals", boolean(False), on=on)
    c.finding("ostial_location", boolean(False), on=on)
    why = "RCA finding 2026-08-28"
    c.expect("stump", "blunt", f"stump = blunt ({why})")
    c.expect("proximal_cap_ambiguity", True, f"proximal-cap-ambiguity = true ({why})")
    c.expect("calcification", "severe", f"DCM 122132 Severity of Calcification = Severe ({why})")
    c.expect("bend_gt_45_in_occlusion", True, f"bend-gt-45 = true ({why})")
    c.expect("tortuosity", "moderate", f"tortuosity-grade SNOMED 6736007 Moderate ({why})")
    c.expect("occlusion_length_mm", 32, f"NCDR 100013030 Lesion Length 32 mm ({why})")
    c.expect("distal_vessel_disease", True, f"distal-vessel-disease = true ({why})")
    c.expect("rentrop_grade", 1, f"rentrop-grade = 1 ({why})")
    c.expect("interventional_collaterals", False, f"interventional-collaterals = false ({why})")
    c.expect("ostial_location", False, f"ostial-cto = false ({why})")
    return c


def pt03() -> Case:
    c = Case(
        "pt03",
        "Proximal-LCX target; CABG (CPT 33534) grafted LAD and RCA, not the target",
        operator="op-expert",
        index_date="2026-09-19",
        target=fb.PROX_LCX,
        gender="male",
        born="1956-09-20",
        age=69,
        name=("Carvalho", "Rui"),
    )
    c.procedure(
        "cabg",
        fb.CPT,
        "33534",
        "CABG, arterial, two grafts (paraphrase)",
        on="2019-04-02",
        sites=(fb.LAD, fb.RCA),
    )
    c.expect("prior_cabg", True, "CPT 33534 CABG on 2019-04-02")
    c.expect(
        "prior_cabg_target_vessel", False, "the 2019 CABG grafted the LAD and RCA, not the LCX"
    )
    on = "2026-09-05"
    c.finding("stump", local_value("no-stump"), on=on)
    c.finding("calcification", boolean(True), on=on, code=NCDR_SEVERE_CALCIFICATION)
    c.finding("occlusion_length_mm", mm(22), on=on)
    c.finding("tortuosity", local_value("unseen"), on=on)
    c.expect("stump", "no_stump", "stump = no-stump (LCX finding 2026-09-05)")
    c.expect("calcification", "severe", "NCDR 1000142350 Severe Calcification = true (LCX)")
    c.expect("occlusion_length_mm", 22, "occlusion-length 22 mm (LCX finding 2026-09-05)")
    c.expect("tortuosity", "unseen", "tortuosity-grade = unseen (local code, LCX)")
    return c


def pt04() -> Case:
    c = Case(
        "pt04",
        "LAD grafted by CABG 10 years ago (SNOMED, bodySite LAD + OM1); operator exactly at thresholds",
        operator="op-threshold",
        index_date="2026-10-15",
        target=fb.LAD,
        gender="female",
        born="1951-10-16",
        age=74,
        name=("Duarte", "Lucia"),
    )
    c.procedure(
        "cabg",
        fb.SNOMED,
        "232717009",
        "Coronary artery bypass grafting",
        on="2016-06-01",
        sites=(fb.LAD, fb.OM1),
    )
    c.expect("prior_cabg", True, "SNOMED 232717009 CABG on 2016-06-01")
    c.expect(
        "prior_cabg_target_vessel",
        True,
        "the 2016-06-01 CABG grafted the LAD (target group), ≥ 90 days before the order",
    )
    on = "2026-10-01"
    c.finding("stump", local_value("blunt"), on=on)
    c.finding("occlusion_length_mm", mm(25), on=on)
    c.finding("calcification", local_value("moderate"), on=on)
    c.finding("rentrop_grade", integer(2), on=on)
    c.expect("stump", "blunt", "stump = blunt (LAD finding 2026-10-01)")
    c.expect("occlusion_length_mm", 25, "occlusion-length 25 mm (LAD finding 2026-10-01)")
    c.expect("calcification", "moderate", "calcification-grade = moderate (LAD finding)")
    c.expect("rentrop_grade", 2, "rentrop-grade = 2 (LAD finding)")
    return c


def pt05() -> Case:
    c = Case(
        "pt05",
        "Mid-RCA target; CABG to the RCA (ICD-10-PCS) 57 days before the order; operator at 4 y 6 m",
        operator="op-threshold",
        index_date="2026-09-15",
        target=fb.MID_RCA,
        gender="male",
        born="1960-09-15",
        age=66,
        name=("Eklund", "Per"),
    )
    c.procedure(
        "cabg",
        fb.ICD10PCS,
        "021009W",
        "Bypass coronary artery, one artery from aorta with autologous venous tissue, open approach",
        on="2026-07-20",
        sites=(fb.RCA,),
    )
    c.expect("prior_cabg", True, "ICD-10-PCS 021009W CABG on 2026-07-20")
    c.expect(
        "prior_cabg_target_vessel",
        False,
        "the only graft to the RCA is 57 days before the order (< 3 months)",
    )
    return c


def pt06() -> Case:
    c = Case(
        "pt06",
        "Proximal-LAD target; CABG status ICD-9-CM V45.81 without grafted vessels",
        operator="op-failing",
        index_date="2026-09-22",
        target=fb.PROX_LAD,
        gender="female",
        born="1960-09-23",
        age=65,
        name=("Fischer", "Greta"),
    )
    c.condition(
        "cabg", fb.ICD9CM, "V45.81", "Aortocoronary bypass status", on="2014-02-11", onset=False
    )
    c.expect("prior_cabg", True, "ICD-9-CM V45.81 aortocoronary bypass status (2014)")
    c.expect("prior_cabg_target_vessel", None, "CABG recorded (V45.81) without the grafted vessels")
    return c


def pt07() -> Case:
    c = Case(
        "pt07",
        "RCA target; CABG (CPT 33510) without vessels, site-entered prior-cabg-target-vessel = true",
        operator="op-expert",
        index_date="2026-10-02",
        target=fb.RCA,
        gender="male",
        born="1948-03-11",
        age=78,
        name=("Gallo", "Marco"),
    )
    c.procedure(
        "cabg", fb.CPT, "33510", "CABG, vein only, single graft (paraphrase)", on="2012-03-05"
    )
    on = "2026-09-20"
    c.finding("prior_cabg_target_vessel", boolean(True), on=on)
    c.finding("rentrop_grade", integer(1), on=on)
    c.expect("prior_cabg", True, "CPT 33510 CABG on 2012-03-05")
    c.expect(
        "prior_cabg_target_vessel",
        True,
        "site-entered prior-cabg-target-vessel = true for the RCA (terminology §4.7c)",
    )
    c.expect("rentrop_grade", 1, "rentrop-grade = 1 (RCA finding 2026-09-20)")
    return c


def pt08() -> Case:
    c = Case(
        "pt08",
        "LCX target; CABG (CPT 33533) recorded without vessels; newcomer operator (8 months)",
        operator="op-newcomer",
        index_date="2026-10-15",
        target=fb.LCX,
        gender="female",
        born="1957-02-02",
        age=69,
        name=("Horvat", "Ana"),
    )
    c.procedure(
        "cabg", fb.CPT, "33533", "CABG, arterial, single graft (paraphrase)", on="2018-11-12"
    )
    c.expect("prior_cabg", True, "CPT 33533 CABG on 2018-11-12")
    c.expect("prior_cabg_target_vessel", None, "the CABG Procedure names no grafted vessel")
    return c


CASES = (pt01, pt02, pt03, pt04, pt05, pt06, pt07, pt08)
