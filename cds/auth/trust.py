"""The CDS clients (EHRs) allowed to call: issuer, where their keys are, which `jku` they may send.

CH-24/CH-25: a JWT is accepted only from an allowlisted `iss`, with a key found by `kid` in a JWKS that is
configured out-of-band (`jwks_url` or inline `jwks`) or fetched from a `jku` the token names, and a `jku`
is only ever fetched when it falls under one of that issuer's `jku_allowlist` prefixes.

The trusted-clients file is a YAML or JSON list:

```yaml
- iss: https://sandbox.cds-hooks.org
  jku_allowlist: [https://sandbox.cds-hooks.org/.well-known/jwks.json]
- iss: https://ehr.example.org
  jwks_url: https://ehr.example.org/.well-known/jwks.json
  tenants: [hospital-a]        # optional: the `tenant` claim must be one of these (CH-25)
```

URLs must be https; plain http is allowed only for loopback hosts (tests, the demo). A `jku_allowlist`
entry matches by scheme, host and port exactly, then by path prefix on a `/` boundary; a `jku` with
user-info, query, fragment, `.`/`..` segments, encoded slashes or dots, or non-ASCII characters never
matches. The parsing and matching are `cds.urls`, shared with the FHIR allowlist.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jwt
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from cds.auth.keys import KeyRejectedError, parse_jwks
from cds.errors import ConfigError
from cds.strict_yaml import StrictLoader
from cds.urls import UrlError, masked, parse_url

URL_RULE = "must be an https URL (http only for loopback), no query or user-info"


def jku_matches(prefix: str, jku: str) -> bool:
    """True when `jku` falls under the allowlisted `prefix` (same origin, path prefix on `/`).

    Both are parsed by `cds.urls` (https, or http for loopback; no query in either)."""
    try:
        allowed = parse_url(prefix, https_only=True)
        target = parse_url(jku, https_only=True)
    except UrlError:
        return False
    return allowed.contains(target)


class TrustedClient(BaseModel):
    """One EHR allowed to call the service (CH-24, CH-25); validated when the file is loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    iss: str = Field(min_length=1)
    """The JWT `iss` exactly as the client sends it (no normalisation)."""
    jwks_url: str | None = None
    """Where the client's JWKS is published (configured out-of-band)."""
    jwks: dict[str, Any] | None = None
    """An inline JWKS (public keys only)."""
    jku_allowlist: list[str] = Field(default_factory=list)
    """URL prefixes a token's `jku` header may point to; a jku off this list is never fetched."""
    tenants: list[str] = Field(default_factory=list)
    """If non-empty, the `tenant` claim is required and must be one of these (CH-25)."""

    _keys: dict[str, jwt.PyJWK] = PrivateAttr(default_factory=dict)

    @field_validator("jwks_url")
    @classmethod
    def _check_jwks_url(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_url(value, https_only=True)
            except UrlError as exc:
                raise ValueError(f"{masked(value)!r} {exc}; {URL_RULE}") from None
        return value

    @field_validator("jku_allowlist")
    @classmethod
    def _check_prefixes(cls, value: list[str]) -> list[str]:
        for index, prefix in enumerate(value):
            try:
                parse_url(prefix, https_only=True)
            except UrlError as exc:
                raise ValueError(f"[{index}] {masked(prefix)!r} {exc}; {URL_RULE}") from None
        return value

    @field_validator("jwks")
    @classmethod
    def _check_jwks(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            try:
                parse_jwks(value, strict=True)
            except KeyRejectedError as exc:
                raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _one_key_source(self) -> TrustedClient:
        if self.jwks_url is not None and self.jwks is not None:
            raise ValueError("set jwks_url or jwks, not both")
        if self.jwks_url is None and self.jwks is None and not self.jku_allowlist:
            raise ValueError("set one of jwks_url, jwks or a non-empty jku_allowlist")
        return self

    def model_post_init(self, context: Any, /) -> None:
        if self.jwks is not None:
            self._keys = parse_jwks(self.jwks, strict=True)

    def inline_key(self, kid: str) -> jwt.PyJWK | None:
        """The inline JWKS key with this `kid`, if any."""
        return self._keys.get(kid)

    def allows_jku(self, jku: str) -> bool:
        """True when `jku` may be fetched for this issuer (CH-25)."""
        return any(jku_matches(prefix, jku) for prefix in self.jku_allowlist)


def load_trusted_clients(path: Path | str) -> list[TrustedClient]:
    """Read the trusted-clients file (YAML, or JSON when it ends in `.json`).

    Raises:
        ConfigError: unreadable file, not a list, a bad entry (file, line for YAML, entry number
            counted from 1, iss, field) or an `iss` listed twice.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read trusted clients: {exc}") from exc
    try:
        data = _parse(path, text)
        lines = _entry_lines(path, text)
    except RecursionError:
        # Both parsers recurse per level: a few thousand brackets exhaust the stack.
        raise ConfigError(f"{path}: nested too deeply to be a trusted-clients file") from None
    if not isinstance(data, list):
        raise ConfigError(
            f"{path}: expected a list of trusted clients {{iss, jwks_url | jwks, ...}}"
        )
    clients: list[TrustedClient] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(data):
        where = f"{path}:{lines[index]}" if index < len(lines) else str(path)
        number = index + 1
        if not isinstance(entry, dict):
            raise ConfigError(
                f"{where}: entry {number}: expected a mapping with iss, jwks_url | jwks"
            )
        try:
            client = TrustedClient.model_validate(entry)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "entry"
            msg = first["msg"].removeprefix("Value error, ")
            raise ConfigError(
                f"{where}: entry {number} ({_shown_iss(entry.get('iss'))}): {field}: {msg}"
            ) from None
        if client.iss in seen:
            raise ConfigError(
                f"{where}: entry {number}: iss: {masked(client.iss)!r} already used by entry {seen[client.iss]}"
            )
        seen[client.iss] = number
        clients.append(client)
    return clients


def _shown_iss(iss: object) -> str:
    """The entry's iss for a message; not a whole nested structure that stands where it should be."""
    if iss is None:
        return "iss None"
    return f"iss {masked(iss)!r}" if isinstance(iss, str) else "iss not a string"


def _parse(path: Path, text: str) -> object:
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    try:
        # Strict (cds/strict_yaml.py): a repeated `jwks_url:` would silently replace the first.
        return yaml.load(text, Loader=StrictLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else "?"
        raise ConfigError(f"{path}:{line}: invalid YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None


def _entry_lines(path: Path, text: str) -> list[int]:
    """1-based line of each top-level list entry in a YAML file (empty for JSON or on failure)."""
    if path.suffix.lower() == ".json":
        return []
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return []
    if not isinstance(node, yaml.SequenceNode):
        return []
    return [item.start_mark.line + 1 for item in node.value]
