"""The SMART on FHIR app (SMART App Launch 2.2; docs/spec/cds-hooks-smart.md SM-01…SM-09).

Served by `cto-cds serve` under `/app/` (same process and settings as the CDS service). The flow:
`/app/launch` checks `iss` against the allowlist before any request (SM-01), discovers the
authorization server (`discovery`, SM-02), starts a server-side session and redirects with PKCE
S256, a 256-bit `state` and `aud` = iss (`authorize`, SM-03/SM-04); `/app/callback` claims the
state once, exchanges the code server-side (`token`, SM-05/SM-06) and stores the tokens encrypted
(`vault`); the page (`page`) reads the record with the access token, only from `iss` (SM-07).
See docs/smart-app.md.
"""
