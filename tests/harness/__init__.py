"""Conformance oracles for CDS Hooks responses, independent of the `cds` package."""
