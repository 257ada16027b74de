"""The CDS Hooks 2.0 wire format in one place (pure: pydantic models, no I/O, no settings).

- `request`: the hook request body (docs/spec/cds-hooks-smart.md CH-07, CH-08, CH-20).
- `response`: cards and the response (CH-15..CH-21) and `dump`, the CH-01 serialisation.
- `feedback`: one feedback item (CH-22) and its limits.
- `coding`: the one FHIR `Coding` all three use.

What is *in* a card (the Operator-CTO wording) is built in `cds.output`; what is stored in
`cds.store`. Both import these models; these import neither, so the wire format has one home.
"""
