"""The CDS Hooks 2.0 request body (docs/spec/cds-hooks-smart.md CH-07, CH-08), validated at the edge.

Unknown fields are tolerated (CH-02); what the service reads is typed. The access token in
`fhirAuthorization` is transient: never stored or logged (CH-08); `SecretStr` hides it from `repr`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator


class FhirAuthorization(BaseModel):
    """CH-08: `{access_token, token_type, expires_in, scope, subject, patient?}`."""

    model_config = ConfigDict(extra="allow")

    access_token: SecretStr
    token_type: str = "Bearer"
    expires_in: int | None = None
    scope: str | None = None
    subject: str | None = None
    patient: str | None = None


class HookRequest(BaseModel):
    """CH-07: `{hook, hookInstance, fhirServer?, fhirAuthorization?, context, prefetch?}`."""

    model_config = ConfigDict(extra="allow")

    hook: str
    hookInstance: str = Field(min_length=1, max_length=200)  # noqa: N815 - wire name
    fhirServer: str | None = None  # noqa: N815
    fhirAuthorization: FhirAuthorization | None = None  # noqa: N815
    context: dict[str, Any]
    prefetch: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _server_with_token(self) -> HookRequest:
        # CH-20: fhirAuthorization requires fhirServer.
        if self.fhirAuthorization is not None and not self.fhirServer:
            raise ValueError("fhirAuthorization is present but fhirServer is not")
        return self
