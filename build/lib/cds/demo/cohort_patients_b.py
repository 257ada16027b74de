"""Index patients pt09–pt16: entered-in-error records, other-vessel findings, prior MI in every code
system (incl. one during the index stay), stents and prior PCI.

Each expectation is the clinical reading of the record as designed (inputs.md rules); reasons cite the
resource that decides it.
"""

from __future__ import annotations

from cds.demo import fhir_build as fb
from cds.demo.case import Case
from cds.demo.fhir_build import boolean, integer, local_value, mm

ANGIO = ("93454", "Coronary angiography (paraphrase)")  # diagnostic only: not a PCI


def pt09() -> Case:
    c = Case(
        "pt09",
        "Mid-LAD target; entered-in-error/refuted CABG and MI, entered-in-error blunt stump",
        operator="op-expert",
        index_date="2026-10-08",
        target=fb.MID_LAD,
        gender="male",
        born="1962-01-30",
        age=64,
        name=("Ibsen", "Jonas"),
    )
    c.condition(
        "cabg",
        fb.ICD10CM,
        "Z95.1",
        "Presence of aortocoronary bypass graft",
        on="2024-05-02",
        onset=False,
        verification="entered-in-error",
    )
    c.condition(
        "mi",
        fb.ICD10CM,
        "I21.9",
        "Acute myocardial infarction, unspecified",
        on="2025-01-15",
        verification="refuted",
    )
    c.procedure(
        "cabg",
        fb.CPT,
        "33533",
        "CABG, arterial, single graft (paraphrase)",
        on="2024-05-01",
        sites=(fb.LAD,),
        status="entered-in-error",
    )
    c.finding("stump", local_value("blunt"), on="2026-09-25", status="entered-in-error")
    c.finding("stump", local_value("tapered"), on="2026-09-25")
    c.expect(
        "prior_cabg", False, "CABG Condition and Procedure are entered-in-error: not documented"
    )
    c.expect("prior_mi", False, "the only MI Condition is refuted: not documented")
    c.expect("stump", "tapered", "stump = tapered; the blunt one is entered-in-error")
    return c


def pt10() -> Case:
    c = Case(
        "pt10",
        "Proximal-RCA target; old MI I252 (no dot); lesion findings only for the LAD",
        operator="op-failing",
        index_date="2026-10-06",
        target=fb.PROX_RCA,
        gender="female",
        born="1956-10-07",
        age=69,
        name=("Jansen", "Eva"),
    )
    c.condition("mi", fb.ICD10CM, "I252", "Old myocardial infarction", on="2020-06-30")
    c.expect("prior_mi", True, "ICD-10-CM I252 (I25.2 without dot) old MI, onset 2020-06-30")
    on = "2026-09-21"
    c.finding("stump", local_value("blunt"), on=on, site=fb.LAD)
    c.finding("occlusion_length_mm", mm(30), on=on, site=fb.LAD)
    c.finding("calcification", local_value("severe"), on=on, site=fb.LAD)
    c.finding("rentrop_grade", integer(0), on=on, site=fb.LAD)
    for name in ("stump", "occlusion_length_mm", "calcification", "rentrop_grade"):
        c.expect(name, None, "finding recorded only for the LAD, not the RCA target")
    return c


def pt11() -> Case:
    c = Case(
        "pt11",
        "Distal-LAD target; old MI ICD-9-CM 412 and PTCA status V45.82, no lesion finding",
        operator="op-override",
        index_date="2026-09-24",
        target=fb.DIST_LAD,
        gender="male",
        born="1955-06-30",
        age=71,
        name=("Kowalski", "Piotr"),
    )
    c.condition("mi", fb.ICD9CM, "412", "Old myocardial infarction", on="2011-08-09", onset=False)
    c.condition(
        "pci",
        fb.ICD9CM,
        "V45.82",
        "Percutaneous transluminal coronary angioplasty status",
        on="2011-08-09",
        onset=False,
    )
    c.expect("prior_mi", True, "ICD-9-CM 412 old myocardial infarction")
    c.expect(
        "in_stent_occlusion", None, "prior PCI (V45.82) but no lesion finding on in-stent occlusion"
    )
    return c


def pt12() -> Case:
    c = Case(
        "pt12",
        "Mid-LCX target; MI SNOMED 22298006 and a stent in the RCA (SNOMED 36969009)",
        operator="op-override",
        index_date="2026-10-29",
        target=fb.MID_LCX,
        gender="female",
        born="1952-04-18",
        age=74,
        name=("Lindqvist", "Sofia"),
    )
    c.condition(
        "mi", fb.SNOMED, "22298006", "Myocardial infarction", on="2015-02-03", clinical="resolved"
    )
    c.procedure(
        "pci",
        fb.SNOMED,
        "36969009",
        "Placement of stent in coronary artery",
        on="2015-02-03",
        sites=(fb.PROX_RCA,),
    )
    c.expect("prior_mi", True, "SNOMED 22298006 myocardial infarction, onset 2015-02-03")
    c.expect(
        "in_stent_occlusion",
        None,
        "stent in the RCA (2015); no lesion finding for the LCX occlusion",
    )
    return c


def pt13() -> Case:
    c = Case(
        "pt13",
        "Ramus target; NSTEMI I21.4 with the ICD-10-CM OID system; operator without history",
        operator="op-nohistory",
        index_date="2026-11-02",
        target=fb.RAMUS,
        gender="male",
        born="1951-11-02",
        age=75,
        name=("Moreau", "Henri"),
    )
    c.condition(
        "mi",
        fb.ICD10CM_OID,
        "I21.4",
        "Non-ST elevation (NSTEMI) myocardial infarction",
        on="2023-02-14",
        clinical="resolved",
    )
    c.expect(
        "prior_mi", True, "I21.4 NSTEMI 2023-02-14 (urn:oid:2.16.840.1.113883.6.90 = ICD-10-CM)"
    )
    return c


def pt14() -> Case:
    c = Case(
        "pt14",
        "RCA target; NSTEMI during the index stay (same Encounter as the order) is not prior",
        operator="op-expert",
        index_date="2026-11-16",
        target=fb.RCA,
        gender="female",
        born="1961-11-17",
        age=64,
        name=("Nielsen", "Ida"),
    )
    c.admit("2026-11-12")
    c.condition(
        "mi",
        fb.ICD10CM,
        "I21.4",
        "Non-ST elevation (NSTEMI) myocardial infarction",
        on="2026-11-12",
        during_stay=True,
    )
    c.condition(
        "other",
        fb.ICD10CM,
        "I25.82",
        "Chronic total occlusion of coronary artery",
        on="2026-11-13",
        during_stay=True,
    )
    c.procedure("other", fb.CPT, *ANGIO, on="2026-11-13")
    c.finding("occlusion_length_mm", mm(15), on="2026-11-13")
    c.expect(
        "prior_mi",
        False,
        "the only MI (I21.4, onset 2026-11-12) is during the index stay: not prior",
    )
    c.expect("occlusion_length_mm", 15, "occlusion-length 15 mm (RCA finding 2026-11-13)")
    return c


def pt15() -> Case:
    c = Case(
        "pt15",
        "Mid-LAD target; LAD stent (CPT 92928) 2023 and in-stent-occlusion = true, cath report",
        operator="op-newcomer",
        index_date="2026-11-10",
        target=fb.MID_LAD,
        gender="male",
        born="1966-11-11",
        age=59,
        name=("Olsen", "Erik"),
    )
    c.procedure(
        "pci",
        fb.CPT,
        "92928",
        "Coronary stent placement, single vessel (paraphrase)",
        on="2023-05-10",
        sites=(fb.LAD,),
    )
    on = "2026-10-28"
    ids = [
        c.finding("in_stent_occlusion", boolean(True), on=on),
        c.finding("stump", local_value("blunt"), on=on),
        c.finding("occlusion_length_mm", mm(28), on=on),
        c.finding("calcification", local_value("mild"), on=on),
    ]
    c.report(ids, on)
    c.expect(
        "in_stent_occlusion",
        True,
        "in-stent-occlusion = true for the LAD (stent placed 2023-05-10)",
    )
    c.expect("stump", "blunt", "stump = blunt (cath report 2026-10-28)")
    c.expect("occlusion_length_mm", 28, "occlusion-length 28 mm (cath report 2026-10-28)")
    c.expect("calcification", "mild", "calcification-grade = mild (cath report 2026-10-28)")
    return c


def pt16() -> Case:
    c = Case(
        "pt16",
        "Mid-RCA target; prior PCI ICD-10-PCS 02703DZ, in-stent-occlusion = false",
        operator="op-failing",
        index_date="2026-11-05",
        target=fb.MID_RCA,
        gender="female",
        born="1958-03-03",
        age=68,
        name=("Petrova", "Olga"),
    )
    c.procedure(
        "pci",
        fb.ICD10PCS,
        "02703DZ",
        "Dilation of coronary artery, one artery with intraluminal device, percutaneous approach",
        on="2022-01-18",
    )
    c.finding("in_stent_occlusion", boolean(False), on="2026-10-20")
    c.expect(
        "in_stent_occlusion",
        False,
        "in-stent-occlusion = false for the RCA occlusion (PCI 2022-01-18)",
    )
    return c


CASES = (pt09, pt10, pt11, pt12, pt13, pt14, pt15, pt16)
