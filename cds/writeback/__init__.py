"""Write-back: the clinician's findings and the scores, saved to the FHIR server idempotently.

The one write path (the CLI `cto-cds save` now, the SMART app's Save button later):

* `identity.py` — identifier system, stable keys and content digests (pure).
* `resource.py` — a planned resource (body, key, digest, sources) and what all of them share (pure).
* `build.py` — the resources to hold, from (record, order, scored case, entered inputs, user, now):
  the findings here, the score Observations and the RiskAssessment in `scores.py` (pure, validated
  with fhir.resources before sending).
* `plan.py` — what to do given what the server holds: create, update or leave unchanged, and the
  transaction Bundle or the ordered requests that do it (pure).
* `send.py` — the I/O: read what the server holds, send one transaction or the requests in order.

See docs/write-back.md.
"""
