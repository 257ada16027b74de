"""The token request and response (SM-05, SM-06), server-side only.

The code is exchanged with `redirect_uri` and the PKCE verifier; the response must be a Bearer
token with a `scope`. Launch context (`patient`, `encounter`, `fhirContext`, `need_patient_banner`,
`appContext`; `fhirUser` from the id_token once `id_token.py` has verified it) is kept; the tokens go to the vault. An error from the
authorization server is shown by its `error` code only (its description may echo input).
"""

from __future__ import annotations

import time
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cds.app.client_auth import ClientAuth
from cds.app.errors import SmartError
from cds.sources.searches import valid_id

DEFAULT_LIFETIME = 3600  # SM-06: tokens SHOULD live ≤ 1 h; assume that when expires_in is absent
# A longer lifetime is taken as this: the app session ends sooner (CTO_CDS_APP_SESSION_MINUTES ≤ 24 h),
# and an expires_in of 10**400 seconds overflowed the float of its expiry (a 500 at the callback).
MAX_LIFETIME = 24 * 3600


def fhir_id(value: str) -> str:
    """`value` when it is a FHIR id that is also a safe path segment, else ValueError.

    The ids of the launch context become request paths (`Patient/{id}`): `/` or `..` in one would
    read another resource, and an id refused later by the record reader was a 500 on the page.
    """
    if not valid_id(value):
        raise ValueError("is not a FHIR id")
    return value


def order_id(fhir_context: list[dict[str, Any]]) -> str | None:
    """The ServiceRequest of the launch context (`ServiceRequest/{id}`, a version allowed), or
    None; ValueError for a ServiceRequest reference whose id is not a FHIR id."""
    for item in fhir_context:
        ref = item.get("reference")
        if isinstance(ref, str) and ref.startswith("ServiceRequest/"):
            rid, history, version = ref.removeprefix("ServiceRequest/").partition("/_history/")
            if history and not valid_id(version):
                raise ValueError("is not a FHIR id")
            return fhir_id(rid)
    return None


class TokenResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")

    access_token: str = Field(min_length=1)
    token_type: str
    scope: str
    expires_in: int | None = None
    refresh_token: str | None = None
    id_token: str | None = None
    patient: str | None = None
    encounter: str | None = None
    fhirContext: list[dict[str, Any]] = Field(default_factory=list)  # noqa: N815 (SMART name)
    need_patient_banner: bool = True
    appContext: str | None = None  # noqa: N815 (SMART name)
    intent: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _tolerant(cls, data: Any) -> Any:
        """A member sent as null is taken as absent (the field's default); a SMART 2.0.0 server
        sends fhirContext as reference strings, taken as `{"reference": …}`."""
        if not isinstance(data, dict):
            return data
        data = {k: v for k, v in data.items() if v is not None}
        context = data.get("fhirContext")
        if isinstance(context, list):
            data["fhirContext"] = [{"reference": i} if isinstance(i, str) else i for i in context]
        return data

    @field_validator("expires_in")
    @classmethod
    def _lifetime(cls, value: int | None) -> int | None:
        if value is not None and value < 0:
            raise ValueError("must not be negative")
        return None if value is None else min(value, MAX_LIFETIME)

    @field_validator("patient")
    @classmethod
    def _patient(cls, value: str | None) -> str | None:
        return None if value is None else fhir_id(value)

    @field_validator("fhirContext")
    @classmethod
    def _order(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        try:
            order_id(value)
        except ValueError:
            raise ValueError(
                "its ServiceRequest reference is not ServiceRequest/<FHIR id>"
            ) from None
        return value


def _failed(detail: str) -> SmartError:
    return SmartError(502, "Sign-in failed", detail, relaunch=True)


async def exchange(
    http: httpx.AsyncClient,
    token_url: str,
    client: ClientAuth,
    *,
    code: str,
    redirect_uri: str,
    verifier: str,
) -> TokenResponse:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
    }
    return await _token_request(http, token_url, client, form)


async def refresh(
    http: httpx.AsyncClient, token_url: str, client: ClientAuth, refresh_token: str
) -> TokenResponse:
    """SM-07: a new access token for a long review; the granted scope may only shrink."""
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return await _token_request(http, token_url, client, form)


async def _token_request(
    http: httpx.AsyncClient, token_url: str, client: ClientAuth, form: dict[str, str]
) -> TokenResponse:
    form = form | client.form(token_url)
    try:
        response = await http.post(token_url, data=form, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise _failed(f"token endpoint unreachable ({type(exc).__name__})") from None
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200 or not isinstance(body, dict):
        error = body.get("error") if isinstance(body, dict) else None
        code_text = error if isinstance(error, str) and error.isascii() else "no error code"
        raise _failed(f"token endpoint answered HTTP {response.status_code} ({code_text[:64]})")
    try:
        token = TokenResponse.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        message = first["msg"].removeprefix("Value error, ")  # never the value: a patient id
        raise _failed(f"token response field {field}: {message}") from None
    if token.token_type.lower() != "bearer":
        raise _failed(f"token_type {token.token_type[:32]!r}: Bearer required")
    return token


def expires_at(token: TokenResponse, now: float | None = None) -> float:
    issued = time.time() if now is None else now
    return issued + (token.expires_in if token.expires_in else DEFAULT_LIFETIME)
