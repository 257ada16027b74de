"""Errors raised by the service, one class per cause.

```
CdsError
  ConfigError     settings, hooks/ or mappings/ invalid (file, row, column); raised at start-up
  InputError      canonical score inputs invalid: each issue names the input and the value
  SourceError     a record source unusable as a whole (file not FHIR, bad FHIR base): `url`, `status`
  AuthError       a client JWT refused: `reason` slug for the log; 401 with no detail
  ContextError    a hook request that cannot be used (400): `loc`, `msg`
  DataUnavailableError required data obtainable neither from prefetch nor the FHIR server (412)
  WriteBackError  a save the FHIR server did not complete: `resource`, `status`, `written`
    UpdateNotGrantedError  a save that would update resources the token may only create: `resources`
```

A search that fails inside a usable source is not an exception: it comes back as `Fetched.error`, so
one slow or refused search leaves the rest of the record readable.

Each error carries what it concerns, so the CLI can print one line and the HTTP layer can build an
OperationOutcome without parsing messages.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass


def integer_too_long() -> str:
    """Why `json.loads` raised a plain ValueError (not a JSONDecodeError): Python refuses to read an
    integer literal longer than its digit limit (4,300 unless changed), which json parses with int()."""
    return f"an integer of more than {sys.get_int_max_str_digits():,} digits"


class CdsError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(CdsError):
    """A configuration file or setting is invalid; raised at start-up, never per request."""


@dataclass(frozen=True)
class InputIssue:
    """One problem with one input: where (`loc`), what was given (`value`), and a stable `type` slug."""

    loc: tuple[str, ...]
    value: object
    type: str
    msg: str

    @property
    def field(self) -> str:
        """`loc` joined with dots, a lone surrogate in a key shown as its escape (see utf8_safe)."""
        return utf8_safe(".".join(self.loc))

    def __str__(self) -> str:
        return f"{self.field}: {self.msg}, got {show_value(self.value)}"


class InputError(CdsError):
    """Score inputs that are not valid: wrong type, out of range, unknown key or not an object."""

    def __init__(self, issues: list[InputIssue] | tuple[InputIssue, ...]) -> None:
        if not issues:
            raise ValueError("InputError needs at least one issue")
        self.issues = tuple(issues)
        super().__init__("; ".join(str(issue) for issue in self.issues))


class SourceError(CdsError):
    """A record source that cannot be used at all; `url` is the file or FHIR URL, `status` the HTTP one.

    Messages name the file and the entry or line; they never quote resource content (patient data).
    """

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


def show_value(value: object) -> str:
    """Render a value as the JSON the user wrote, so `true`, `"Blunt"` and `-3` read as typed."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=True)
    except (TypeError, ValueError):
        text = repr(value)
    return utf8_safe(text)


def utf8_safe(text: str) -> str:
    """`text` with any lone surrogate ("\ud800" in a JSON string or key) shown as that escape:
    UTF-8 cannot carry one, so a message holding it could be neither printed nor sent (a 500)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class AuthError(CdsError):
    """A client JWT was refused. `reason` is a stable slug for logs; clients get 401, no detail."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class ContextError(CdsError):
    """A hook request that cannot be used: wrong hook, missing context, malformed body (400)."""

    def __init__(self, loc: str, msg: str) -> None:
        self.loc = loc
        self.msg = msg
        super().__init__(f"{loc}: {msg}")


class DataUnavailableError(CdsError):
    """Data the service needs could be read neither from prefetch nor from the FHIR server (412)."""

    def __init__(self, what: str, why: str) -> None:
        self.what = what
        self.why = why
        super().__init__(f"{what}: {why}")


class WriteBackError(CdsError):
    """A write-back the FHIR server did not complete (refused, 5xx, timeout, version conflict).

    `resource` names the resource concerned (e.g. "Observation/12 (finding stump)"), `status` is the
    HTTP status when there was one, `written` the references already written when the server could not
    take a transaction: saving again completes them, since writes are keyed by identifier.
    """

    def __init__(
        self,
        message: str,
        *,
        resource: str | None = None,
        status: int | None = None,
        written: tuple[str, ...] = (),
    ) -> None:
        self.resource = resource
        self.status = status
        self.written = written
        if written:
            message += f"; already written: {', '.join(written)} (saving again completes the rest)"
        super().__init__(message)


class UpdateNotGrantedError(WriteBackError):
    """A save whose plan updates resources of a type the caller may only create (a SMART grant
    without `u`): refused before anything is written. `resources` names each one."""

    def __init__(self, resources: tuple[str, ...]) -> None:
        self.resources = resources
        super().__init__(
            "nothing written: saving would update "
            + ", ".join(resources)
            + ", and the EHR granted create only (no update scope)",
            resource=resources[0] if resources else None,
            status=403,
        )
