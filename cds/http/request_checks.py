"""Checks on a hook request that the wire model leaves to the edge: each failure is a 400 naming
the field (docs/spec/cds-hooks-smart.md CH-23), never a 500 further in.

* `context.patientId` must be a FHIR id, matched whole (`pt04\\n` is not one) and without `..`:
  it becomes a path segment of FHIR reads.
* `fhirServer` must be a clean base URL (`cds.urls`): a dot segment, an encoded slash or dot, a
  query, a fragment or whitespace is refused before the allowlist is even consulted, so the token
  can never be sent outside the allowed base.
* `hookInstance` is stored: no control characters or lone surrogates.
* `context` and `prefetch` may nest at most `MAX_DEPTH` levels (a FHIR resource needs far fewer):
  deeper JSON would exhaust the recursion limit in any later recursive walk. The prefetch is
  checked (`check_prefetch`) only when the call is about to read it, i.e. for a CTO-PCI order: a
  call for any other order answers no card without touching it, and walking a full prefetch's
  ~1,500 containers (0.28 ms) was a fifth of such a call's CPU.
"""

from __future__ import annotations

import re
from typing import Any

from cds.cdshooks.request import HookRequest
from cds.errors import ContextError
from cds.text_checks import storable_text
from cds.urls import UrlError, parse_url

MAX_DEPTH = 64
# FHIR id (http://hl7.org/fhir/R4/datatypes.html#id), matched in full.
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def check_hook_request(request: HookRequest) -> None:
    """ContextError naming the first field that is refused."""
    try:
        storable_text(request.hookInstance)
    except ValueError as exc:
        raise ContextError("hookInstance", str(exc)) from None
    if request.fhirServer is not None:
        try:
            parse_url(request.fhirServer)
        except UrlError as exc:
            raise ContextError("fhirServer", str(exc)) from None
    pid = request.context.get("patientId")
    if pid is not None and (not isinstance(pid, str) or not _FHIR_ID.fullmatch(pid) or ".." in pid):
        raise ContextError(
            "context.patientId",
            "is not a FHIR id (1-64 of A-Z a-z 0-9 - . without '..')",
        )
    _check_depth("context", request.context)


def check_prefetch(request: HookRequest) -> None:
    """ContextError when the prefetch nests too deep; call it before the prefetch is read."""
    _check_depth("prefetch", request.prefetch)


def _check_depth(name: str, value: Any) -> None:
    if value is not None and _deeper_than(value, MAX_DEPTH):
        raise ContextError(name, f"is nested more than {MAX_DEPTH} levels deep")


def _deeper_than(value: Any, limit: int) -> bool:
    """True when JSON `value` nests more than `limit` containers; level by level, never recursion
    (one pass over a full prefetch's ~1,500 containers: a hot-path cost, so no per-node tuples)."""
    level = [value] if isinstance(value, dict | list) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below = []
        for node in level:
            for child in node.values() if type(node) is dict else node:
                if type(child) is dict or type(child) is list:
                    below.append(child)
        level = below
    return False
