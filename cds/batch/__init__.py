"""Batch scoring: a Bulk FHIR export or a CSV of inputs, streamed patient by patient (see run.py)."""
