"""Synthetic demo data and a disposable FHIR server for tests and the local demo.

`cohort` generates a deterministic cohort of CTO-PCI orders with the inputs a clinician would read from
each record (`cohort_expected.json`); `fhir_server` starts sekmet-fhir and loads the cohort into any
FHIR R4 server. Nothing here is imported by the service itself.
"""
