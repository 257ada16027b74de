"""Save from the review page: the form's findings written back through cds/writeback (issue 8).

Why it is built this way:

* **CSRF.** The Save form carries an anti-forgery token derived from this browser's own session
  id (HMAC-SHA256 under `CTO_CDS_APP_CONTEXT_SECRET`), checked server-side in constant time. The
  SameSite=Lax cookie already keeps a cross-site POST from carrying the session, but Lax is a
  browser policy (older browsers, same-site subdomains); the token is the server's own check. It
  needs no storage: another session, or a page from before a relaunch, cannot produce it.
* **What is saved.** Lesion findings only (the rest is read from the record): a value that differs
  from what the record says, or one the record holds because it was saved from here before (so a
  second Save sends the same findings and the write path reports them unchanged). Patient history
  and the operator what-if stay on the page.
* **One fetch path, one token, one place.** The record is re-read through `read_record` with the
  session's access token, sent only to `iss` (the session's allowlisted FHIR base, SM-07); the
  write path writes with the same token and the user from `fhirUser` as performer.
* **Double submission.** The script disables the button while a save is in flight; a per-session
  lock in the database (`app_save_lock`, so it holds across replicas) answers a second concurrent
  POST with 409. It expires after SAVE_LOCK_TTL (longer than a save's 60 s record deadline plus its
  writes), so a process that dies mid-save does not block the session for good, and it is released
  by its holder id only. The write path's idempotence still makes a repeat write nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from html import escape
from urllib.parse import parse_qs

from cds.errors import InputError, UpdateNotGrantedError
from cds.mapping.findings import LESION_INPUTS
from cds.mapping.provenance import MappedInput
from cds.scoring.inputs import INPUT_SPECS, InputValue
from cds.sources.record import PatientRecord
from cds.sources.searches import valid_id
from cds.store import Store
from cds.writeback.identity import IDENTIFIER_SYSTEM
from cds.writeback.send import SaveResult

MAX_FORM_BYTES = 64 * 1024
CSRF_FIELD = "csrf"
_USER_TYPES = ("Practitioner", "PractitionerRole")
SAVE_LOCK_TTL = timedelta(minutes=3)


def csrf_token(secret: str, session_id: str) -> str:
    """The anti-forgery token of one browser session (never stored; recomputed to check)."""
    mac = hmac.new(secret.encode(), b"app-save-csrf|" + session_id.encode(), hashlib.sha256)
    return mac.hexdigest()


def csrf_ok(secret: str, session_id: str | None, sent: str | None) -> bool:
    if not session_id or not sent:
        return False
    # Bytes: compare_digest refuses str with non-ASCII characters (TypeError, a 500 before).
    expected = csrf_token(secret, session_id).encode()
    return hmac.compare_digest(expected, sent.encode("utf-8", "backslashreplace"))


def parse_form(body: bytes) -> dict[str, str]:
    """`application/x-www-form-urlencoded` → each field's value (no multipart needed).

    A field given twice with different values is a ValueError naming it: which one to write would
    be a guess (the page sends each field once; a proxy or a log reading the first value would
    see another finding than the one written)."""
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    for name, values in fields.items():
        if len(set(values)) > 1:
            shown = ", ".join(repr(v[:40]) for v in sorted(set(values))[:3])
            raise ValueError(f"the form gives {name[:40]!r} more than one value ({shown})")
    return {name: values[0] for name, values in fields.items()}


def posted_inputs(form: Mapping[str, str]) -> dict[str, str]:
    """The canonical inputs in the form, as typed (unknown names are ignored: not inputs)."""
    return {name: value for name, value in form.items() if name in INPUT_SPECS}


def issues_by_field(error: InputError) -> dict[str, str]:
    """Each issue under the input it names (shown next to that field); others under ""."""
    issues: dict[str, str] = {}
    for issue in error.issues:
        name = next((str(p) for p in issue.loc if str(p) in INPUT_SPECS), "")
        issues[name] = "; ".join(filter(None, (issues.get(name), str(issue))))
    return issues


def performer(fhir_user: object) -> str | None:
    """`fhirUser` (a reference or an absolute URL) → Practitioner/ID or PractitionerRole/ID.

    Any other user type (Patient, RelatedPerson) or an unreadable value → None: the write path
    then records cto-cds as the author (a system write), never a guessed person.
    """
    if not isinstance(fhir_user, str):
        return None
    parts = fhir_user.rstrip("/").split("/")
    if len(parts) < 2 or parts[-2] not in _USER_TYPES or not valid_id(parts[-1]):
        return None
    return f"{parts[-2]}/{parts[-1]}"


def saved_before(record: PatientRecord) -> frozenset[str]:
    """The record's Observations written by a previous save (they carry the write-back identifier)."""
    return frozenset(
        obs.ref
        for obs in record.observations
        if any(i.system == IDENTIFIER_SYSTEM for i in obs.identifier)
    )


def findings_to_save(
    values: Mapping[str, InputValue | None],
    mapped: Mapping[str, MappedInput],
    saved: frozenset[str] = frozenset(),
) -> dict[str, InputValue]:
    """The lesion findings the clinician entered (changed from the record) or saved before
    (the winning source is a saved finding, even when an older report disagrees)."""
    entered: dict[str, InputValue] = {}
    for name in LESION_INPUTS:
        value = values.get(name)
        if value is None:
            continue
        known = mapped.get(name)
        if known is None or known.value != value or bool(set(known.sources[:1]) & saved):
            entered[name] = value
    return entered


@asynccontextmanager
async def one_save_per_session(store: Store, session_key: str) -> AsyncIterator[bool]:
    """True when no replica had a save of this session running (then this one holds the slot
    until the end); False when another save holds it."""
    holder = secrets.token_hex(16)
    if not await store.acquire_save_lock(session_key, holder, SAVE_LOCK_TTL):
        yield False
        return
    try:
        yield True
    finally:
        await store.release_save_lock(session_key, holder)


def result_html(result: SaveResult) -> str:
    """What the save did, by reference, grouped by action (created / updated / unchanged)."""
    if result.mode == "nothing to write":
        head = "Saved already: the EHR holds these findings and scores; nothing was written."
    else:
        head = f"Saved to the EHR ({escape(result.mode)})."
    parts = [f'<section id="save-result" role="status"><p class="saved">{head}</p>']
    for action, refs in (
        ("created", result.created),
        ("updated", result.updated),
        ("unchanged", result.unchanged),
    ):
        if not refs:
            continue
        items = "".join(
            f"<li><code>{escape(ref)}</code> {escape(result.labels.get(ref, ''))}</li>"
            for ref in refs
        )
        parts.append(
            f'<h3>{action.capitalize()} ({len(refs)})</h3><ul class="{action}">{items}</ul>'
        )
    return "".join(parts) + "</section>"


def update_refused_html(error: UpdateNotGrantedError) -> str:
    """The create-only refusal: which saved resources the change would have to update."""
    items = "".join(f"<li><code>{escape(ref)}</code></li>" for ref in error.resources)
    return (
        '<section id="save-result" role="alert"><p class="save-error">Not saved, nothing '
        "written: these resources saved before would need an update, and the EHR granted create "
        f'only (ask for the update scope, e.g. patient/Observation.cu):</p><ul class="needs-update">'
        f"{items}</ul></section>"
    )


def notice_html(kind: str, text: str) -> str:
    role = "alert" if kind == "save-error" else "status"
    return f'<section id="save-result" role="{role}"><p class="{kind}">{escape(text)}</p></section>'
