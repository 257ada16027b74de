"""Index patients pt25–pt32: an almost empty record, conditions that feed no input, CABG status without
vessels, stents without findings, findings on two vessels, standard codes only.

Each expectation is the clinical reading of the record as designed (inputs.md rules); reasons cite the
resource that decides it.
"""

from __future__ import annotations

from cds.demo import fhir_build as fb
from cds.demo.case import DCM_CALCIFICATION, NCDR_LESION_LENGTH, Case
from cds.demo.fhir_build import boolean, integer, local_value, mm, severity

ANGIO = ("93454", "Coronary angiography (paraphrase)")  # diagnostic only: not a PCI
CTO_PCI = (fb.CTO_PCI_CPT, fb.CTO_PCI_DISPLAY)


def pt25() -> Case:
    # Only the Patient (no birthDate, gender unknown) and the order.
    return Case(
        "pt25",
        "Almost nothing recorded: no birthDate, gender unknown, no history or findings",
        operator="op-nohistory",
        index_date="2026-11-20",
        target=fb.LAD,
        gender="unknown",
        born=None,
        age=None,
    )


def pt26() -> Case:
    c = Case(
        "pt26",
        "LAD target, gender other; only conditions that feed no input (CAD, CTO, CKD 3a)",
        operator="op-override",
        index_date="2026-09-17",
        target=fb.LAD,
        gender="other",
        born="1970-02-14",
        age=56,
        name=("Yilmaz", "Deniz"),
    )
    c.condition(
        "other",
        fb.ICD10CM,
        "I25.10",
        "Atherosclerotic heart disease of native coronary artery without angina pectoris",
        on="2024-01-09",
    )
    c.condition(
        "other", fb.ICD10CM, "I25.82", "Chronic total occlusion of coronary artery", on="2026-08-31"
    )
    c.condition("other", fb.ICD10CM, "N18.31", "Chronic kidney disease, stage 3a", on="2025-04-02")
    return c


def pt27() -> Case:
    c = Case(
        "pt27",
        "Proximal-RCA target; CABG status Z95.1 without vessels and STEMI I21.09",
        operator="op-failing",
        index_date="2026-11-13",
        target=fb.PROX_RCA,
        gender="male",
        born="1951-11-14",
        age=74,
        name=("Zeller", "Anton"),
    )
    c.condition(
        "cabg",
        fb.ICD10CM,
        "Z95.1",
        "Presence of aortocoronary bypass graft",
        on="2017-09-05",
        onset=False,
    )
    c.condition(
        "mi",
        fb.ICD10CM,
        "I21.09",
        "ST elevation myocardial infarction involving other coronary artery of anterior wall",
        on="2017-08-28",
        clinical="resolved",
    )
    c.expect("prior_cabg", True, "ICD-10-CM Z95.1 presence of aortocoronary bypass graft")
    c.expect("prior_cabg_target_vessel", None, "Z95.1 records a graft but not which vessels")
    c.expect("prior_mi", True, "ICD-10-CM I21.09 STEMI, onset 2017-08-28")
    return c


def pt28() -> Case:
    c = Case(
        "pt28",
        "Distal-RCA target; RCA stent (CPT 92928) without a lesion finding",
        operator="op-expert",
        index_date="2026-10-22",
        target=fb.DIST_RCA,
        gender="female",
        born="1955-10-23",
        age=70,
        name=("Amato", "Rosa"),
    )
    c.procedure(
        "pci",
        fb.CPT,
        "92928",
        "Coronary stent placement, single vessel (paraphrase)",
        on="2024-04-16",
        sites=(fb.MID_RCA,),
    )
    c.expect(
        "in_stent_occlusion",
        None,
        "RCA stent (2024-04-16) but no lesion finding on in-stent occlusion",
    )
    return c


def pt29() -> Case:
    c = Case(
        "pt29",
        "LAD target with findings on the LAD (used) and on the RCA (ignored)",
        operator="op-override",
        index_date="2026-11-06",
        target=fb.LAD,
        gender="male",
        born="1966-04-04",
        age=60,
        name=("Becker", "Lukas"),
    )
    on = "2026-10-25"
    c.finding("stump", local_value("tapered"), on=on)
    c.finding("stump", local_value("blunt"), on=on, site=fb.RCA)
    c.finding("occlusion_length_mm", mm(15), on=on, code=NCDR_LESION_LENGTH)
    c.finding("calcification", local_value("severe"), on=on, site=fb.RCA)
    c.expect("stump", "tapered", "stump = tapered for the LAD; the blunt stump is on the RCA")
    c.expect("occlusion_length_mm", 15, "NCDR 100013030 Lesion Length 15 mm (LAD)")
    c.expect("calcification", None, "calcification recorded only for the RCA, not the LAD target")
    return c


def pt30() -> Case:
    c = Case(
        "pt30",
        "Proximal-RCA target; CABG (SNOMED) grafted LCX branches only; old MI I25.2",
        operator="op-newcomer",
        index_date="2026-09-29",
        target=fb.PROX_RCA,
        gender="female",
        born="1946-06-06",
        age=80,
        name=("Costa", "Beatriz"),
    )
    c.procedure(
        "cabg",
        fb.SNOMED,
        "232717009",
        "Coronary artery bypass grafting",
        on="2010-05-18",
        sites=(fb.OM1, fb.MID_LCX),
    )
    c.condition(
        "mi", fb.ICD10CM, "I25.2", "Old myocardial infarction", on="2010-05-01", onset=False
    )
    c.expect("prior_cabg", True, "SNOMED 232717009 CABG on 2010-05-18")
    c.expect("prior_cabg_target_vessel", False, "the CABG grafted OM1 and mid LCX, not the RCA")
    c.expect("prior_mi", True, "ICD-10-CM I25.2 old myocardial infarction")
    return c


def pt31() -> Case:
    c = Case(
        "pt31",
        "Mid-LAD target; standard codes only: DCM mild calcification, NCDR length 20 mm",
        operator="op-override",
        index_date="2026-11-19",
        target=fb.MID_LAD,
        gender="male",
        born="1960-11-20",
        age=65,
        name=("Dahl", "Sven"),
    )
    on = "2026-11-05"
    c.finding("calcification", severity("mild"), on=on, code=DCM_CALCIFICATION)
    c.finding("occlusion_length_mm", mm(20), on=on, code=NCDR_LESION_LENGTH)
    c.finding("stump", local_value("tapered"), on=on)
    c.finding("rentrop_grade", integer(2), on=on)
    c.expect("calcification", "mild", "DCM 122132 Severity of Calcification = Mild (LAD)")
    c.expect("occlusion_length_mm", 20, "NCDR 100013030 Lesion Length 20 mm (LAD)")
    c.expect("stump", "tapered", "stump = tapered (LAD finding 2026-11-05)")
    c.expect("rentrop_grade", 2, "rentrop-grade = 2 (LAD finding 2026-11-05)")
    return c


def pt32() -> Case:
    c = Case(
        "pt32",
        "LCX target; DES PCI coded HCPCS C9600 in the LCX and in-stent-occlusion = true",
        operator="op-nohistory",
        index_date="2026-10-01",
        target=fb.LCX,
        gender="female",
        born="1956-10-01",
        age=70,
        name=("Engel", "Marta"),
    )
    c.procedure(
        "pci",
        fb.HCPCS,
        "C9600",
        "PCI with drug-eluting stent, single vessel (paraphrase)",
        on="2021-03-03",
        sites=(fb.PROX_LCX,),
    )
    on = "2026-09-18"
    c.finding("in_stent_occlusion", boolean(True), on=on)
    c.finding("occlusion_length_mm", mm(35), on=on)
    c.expect("in_stent_occlusion", True, "in-stent-occlusion = true for the LCX (DES 2021-03-03)")
    c.expect("occlusion_length_mm", 35, "occlusion-length 35 mm (LCX finding 2026-09-18)")
    return c


CASES = (pt25, pt26, pt27, pt28, pt29, pt30, pt31, pt32)
