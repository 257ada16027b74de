"""The write-back's I/O: read the record and what the server holds, then write what changed.

Why it is built this way:

* One transaction where the server supports it (CapabilityStatement `transaction` interaction): all or
  nothing. Otherwise the requests go one by one in dependency order (findings, scores, risk,
  Provenance), urn:uuid references replaced by the ids the server gave; when one fails, the error lists
  what is already written, and saving again completes the rest because every resource is keyed by its
  identifier (conditional create, If-Match update).
* What the server holds is read first (one identifier search per resource type), so a save of the same
  inputs sends no write at all, not even a Provenance.
* A request is retried (connect errors, timeouts, 429/502/503/504) only when repeating it cannot write
  twice: reads and conditional creates (the Provenance's on its save tag). A transaction and an
  If-Match update (a repeat after success would be a 412) are sent once.
* A sequential save whose Provenance POST failed is completed by the next save: the resources name
  their save, and a save that finds them unchanged re-sends a Provenance missing (plan.py).
* Conditional create is not atomic on every server (sekmet 0.1.1 checks then writes), so saves of one
  patient's order are serialised in-process by a per-key lock, dropped when no save holds or waits
  on it (a long-running server would otherwise keep one per order ever saved).
* Errors name the resource and the HTTP status; OperationOutcome text is summarised with the patient
  id and the token redacted. Location headers are parsed for the id, never followed.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ValidationError

from cds.errors import SourceError, UpdateNotGrantedError, WriteBackError
from cds.mapping.operator import history_planner
from cds.mapping.order import find_order
from cds.mapping.tables import MappingTables
from cds.scoring.inputs import InputValue
from cds.sources.fhir import FhirBase, outcome_summary, read_searchset
from cds.sources.record import RecordRequest, RecordSource, read_record
from cds.sources.searches import valid_id
from cds.writeback.build import (
    build_resources,
    order_body_site,
    score_with_entered,
    validate_json,
)
from cds.writeback.identity import identifier_token
from cds.writeback.plan import (
    Held,
    Step,
    WritePlan,
    held_from,
    key_search,
    lost_provenances,
    plan_writes,
    resolve_refs,
    save_tag,
    saves_named,
    saves_tagged,
    transaction,
)
from cds.writeback.resource import Json, Planned, SaveContext

FHIR_JSON = "application/fhir+json"
RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_SEARCH_PAGES = 20
"""Pages of one identifier search (a save holds at most ~20 resources of a type)."""
_REF = re.compile(r"([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]*)?/?$")
_ENTRY = re.compile(r"\b[Ee]ntry\s*\[?(\d+)")
_ENCODING = frozenset({"content-encoding", "content-length", "transfer-encoding"})


Mode = Literal["transaction", "sequential", "dry-run", "nothing to write"]


class SaveResult(BaseModel):
    """What a save did, by reference (`--json` of `cto-cds save`)."""

    created: list[str]
    updated: list[str]
    unchanged: list[str]
    mode: Mode
    labels: dict[str, str] = {}
    """reference -> what it records (finding stump, score operator_cto, provenance)."""
    bundle: dict[str, Any] | None = None


@dataclass(frozen=True)
class Capabilities:
    transaction: bool
    identifier_types: frozenset[str] | None
    """Resource types with an identifier search; None when the server did not describe them."""


@dataclass(frozen=True)
class WriteLimits:
    timeout: float = 10.0
    """Per request, the whole answer included (httpx's own timeouts bound each read only)."""
    retries: int = 2
    backoff: float = 0.2
    max_bytes: int = 8_000_000
    """Largest answer read; a longer one is abandoned while streaming."""


@dataclass
class _KeyLock:
    lock: asyncio.Lock
    users: int = 0
    """Saves holding or waiting on the lock: at 0 the entry is dropped."""


_locks: dict[tuple[int, str], _KeyLock] = {}
"""Only the keys being saved: a long-running server saves one key per patient's order, forever."""


@asynccontextmanager
async def _serialised(key: str) -> AsyncIterator[None]:
    """Saves of one key one at a time in this process; the lock is dropped when no one holds or
    waits on it. Keyed by the running loop too: an asyncio.Lock must not be shared between event
    loops (and a dead loop's id can be reused)."""
    loop_key = (id(asyncio.get_running_loop()), key)
    # No await between the look-up and the count: no other task runs in between.
    entry = _locks.get(loop_key)
    if entry is None:
        entry = _locks[loop_key] = _KeyLock(asyncio.Lock())
    entry.users += 1
    try:
        async with entry.lock:
            yield
    finally:
        # Also when cancelled while waiting: the waiter leaves, the count follows.
        entry.users -= 1
        if entry.users == 0 and _locks.get(loop_key) is entry:
            del _locks[loop_key]


def _ref_of(location: str | None, body: object, kind: str) -> str | None:
    """`kind/id` of the resource written, from its Location or the body returned. Another type or
    a malformed id is no answer: later resources reference what this returns."""
    if location:
        match = _REF.search(location)
        if match and match.group(1) == kind:
            return f"{kind}/{match.group(2)}"
    if isinstance(body, dict) and body.get("resourceType") == kind:
        rid = body.get("id")
        if isinstance(rid, str) and valid_id(rid):
            return f"{kind}/{rid}"
    return None


class FhirWriter:
    """Reads and writes the resources of one save on one FHIR base, with one injected httpx client."""

    def __init__(
        self,
        base_url: str,
        client: httpx.AsyncClient,
        *,
        token: str | None = None,
        redact_ids: tuple[str, ...] = (),
        limits: WriteLimits | None = None,
    ) -> None:
        self.base = base_url.rstrip("/")
        self._client = client
        self._token = token
        self._ids = redact_ids
        self._limits = limits or WriteLimits()
        self.capabilities = Capabilities(False, None)

    def __repr__(self) -> str:  # never the token
        return f"FhirWriter({self.base!r})"

    def _headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = {"Accept": FHIR_JSON}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        headers.update(extra or {})
        return headers

    async def _send(
        self,
        method: str,
        path: str,
        what: str,
        *,
        body: Json | None = None,
        headers: Mapping[str, str] | None = None,
        retry: bool,
    ) -> httpx.Response:
        attempts = self._limits.retries + 1 if retry else 1
        if path.startswith(("http://", "https://")):  # a next link, checked by the caller
            url = path
        else:
            url = f"{self.base}/{path}" if path else self.base
        for attempt in range(attempts):
            last = attempt == attempts - 1
            request = self._client.build_request(
                method,
                url,
                json=body,
                headers=self._headers(
                    {**(headers or {}), **({"Content-Type": FHIR_JSON} if body else {})}
                ),
                timeout=self._limits.timeout,
            )
            try:
                async with asyncio.timeout(self._limits.timeout):
                    response = await self._exchange(request, what)
            except (TimeoutError, httpx.TimeoutException):
                if last:
                    raise WriteBackError(
                        f"{what}: the FHIR server did not answer within {self._limits.timeout:g} s",
                        resource=what,
                    ) from None
            except httpx.TransportError as exc:
                if last:
                    raise WriteBackError(
                        f"{what}: cannot reach the FHIR server ({type(exc).__name__})",
                        resource=what,
                    ) from None
            else:
                if response.status_code not in RETRY_STATUSES or last:
                    return response
            await asyncio.sleep(self._limits.backoff * 2**attempt)
        raise AssertionError("unreachable")

    async def _exchange(self, request: httpx.Request, what: str) -> httpx.Response:
        """The answer to `request`, its body read whole unless it passes `max_bytes`."""
        cap = self._limits.max_bytes
        response = await self._client.send(request, stream=True, follow_redirects=False)
        try:
            declared = response.headers.get("Content-Length", "")
            size = int(declared) if declared.isdigit() else 0
            chunks: list[bytes] = []
            if size <= cap:
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > cap:
                        break
                    chunks.append(chunk)
        finally:
            await response.aclose()
        if size > cap:
            raise WriteBackError(f"{what}: the answer is over {cap} bytes, not read", resource=what)
        # The body is decoded already: the headers that described its encoding no longer apply.
        kept = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _ENCODING]
        return httpx.Response(
            response.status_code, headers=kept, content=b"".join(chunks), request=request
        )

    def refused(
        self, what: str, response: httpx.Response, written: tuple[str, ...] = ()
    ) -> WriteBackError:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        detail = (
            outcome_summary(body, self._ids, self._token)
            if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome"
            else "no OperationOutcome"
        )
        if status == 412:
            cause = "version conflict (changed on the server since it was read; save again)"
        elif status >= 500:
            cause = "server error"
        else:
            cause = "refused"
        return WriteBackError(
            f"{what}: {cause}, HTTP {status}: {detail}",
            resource=what,
            status=status,
            written=written,
        )

    async def held(self, planned: list[Planned]) -> dict[str, Held]:
        """The server's current resources for the planned keys: one identifier search per type,
        every page of it (a key missed would be planned as a create and its change lost)."""
        found: dict[str, Held] = {}
        for kind in dict.fromkeys(p.resource_type for p in planned):
            keys = [p.key for p in planned if p.resource_type == kind]
            param = key_search(kind, keys[0], self.capabilities.identifier_types).partition("=")[0]
            tokens = ",".join(identifier_token(key) for key in keys)
            url: str | None = f"{kind}?{param}={tokens}&_count=100"
            pages = 0
            while url is not None:
                pages += 1
                if pages > MAX_SEARCH_PAGES:
                    raise WriteBackError(
                        f"{kind} search by identifier: more than {MAX_SEARCH_PAGES} pages for "
                        f"{len(keys)} identifiers, nothing written",
                        resource=kind,
                    )
                resources, url = await self._search_page(kind, url)
                for resource in resources:
                    if (item := held_from(resource)) is not None:
                        key, state = item
                        if key in found and found[key].ref != state.ref:
                            raise WriteBackError(
                                f"{state.ref} and {found[key].ref} carry the same write-back "
                                "identifier: resolve the duplicate on the server first",
                                resource=state.ref,
                            )
                        found[key] = state
        return found

    async def _search_page(
        self, kind: str, url: str, by: str = "identifier"
    ) -> tuple[list[Mapping[str, object]], str | None]:
        """One page of an identifier search: its resources and its `next` link, checked."""
        response = await self._send("GET", url, f"{kind} search", retry=True)
        if response.status_code != 200:
            raise self.refused(f"{kind} search by {by}", response)
        try:
            # What the server holds decides every write: an answer not read is not guessed.
            page = read_searchset(response.json())
            if page.next_url is not None and not FhirBase(self.base).contains(page.next_url):
                # The token goes to the FHIR base only.
                raise ValueError("next link outside the FHIR base")
        except (ValueError, SourceError) as exc:
            cause = "not valid JSON" if isinstance(exc, json.JSONDecodeError) else str(exc)
            raise WriteBackError(
                f"{kind} search by {by}: {cause}, nothing written", resource=kind
            ) from None
        return page.resources, page.next_url

    async def read_capabilities(self) -> Capabilities:
        """Transaction support and identifier searches from the CapabilityStatement; without a
        usable statement: no transaction (requests one by one) and standard identifier searches."""
        try:
            response = await self._send("GET", "metadata", "CapabilityStatement", retry=True)
            statement = response.json() if response.status_code == 200 else {}
        except (WriteBackError, ValueError):
            statement = {}
        if not isinstance(statement, dict):
            statement = {}
        rests = [r for r in statement.get("rest") or [] if isinstance(r, dict)]
        transaction_ok = any(
            isinstance(i, dict) and i.get("code") == "transaction"
            for rest in rests
            for i in rest.get("interaction") or []
        )
        described = [r for rest in rests for r in rest.get("resource") or [] if isinstance(r, dict)]
        types = frozenset(
            str(r.get("type"))
            for r in described
            if any(
                isinstance(p, dict) and p.get("name") == "identifier"
                for p in r.get("searchParam") or []
            )
        )
        self.capabilities = Capabilities(transaction_ok, types if described else None)
        return self.capabilities

    async def send_transaction(self, plan: WritePlan) -> dict[str, str]:
        """All or nothing. Returns planned full URL / held ref -> the reference the server holds."""
        bundle = transaction(plan, self.capabilities.identifier_types)
        labels = [s.label for s in plan.writes] + (["Provenance"] if plan.provenance else [])
        what = f"transaction of {len(labels)} resources"
        response = await self._send("POST", "", what, body=bundle, retry=False)
        if response.status_code != 200:
            error = self.refused(what, response)
            hit = _ENTRY.search(str(error))
            if hit and int(hit.group(1)) < len(labels):
                error = self.refused(f"{what}, at {labels[int(hit.group(1))]}", response)
            raise error
        # HTTP 200: committed. An entry that does not say where a resource went leaves it known by
        # its planned urn:uuid; saving again finds it by identifier (unchanged).
        body = _json_or_none(response)
        entries = body.get("entry") if isinstance(body, dict) else None
        out: dict[str, str] = {}
        kept: list[str] = []
        for step, entry in zip(
            plan.writes, entries if isinstance(entries, list) else [], strict=False
        ):
            if not isinstance(entry, dict):
                continue
            answer = entry.get("response")
            status = answer.get("status") if isinstance(answer, dict) else None
            if isinstance(status, str) and _kept_other(step, status[:3], entry.get("resource")):
                kept.append(step.label)
            location = answer.get("location") if isinstance(answer, dict) else None
            ref = _ref_of(
                location if isinstance(location, str) else None,
                entry.get("resource"),
                step.planned.resource_type,
            )
            if ref:
                out[step.planned.full_url] = ref
        if kept:
            raise WriteBackError(
                f"{what} written, except {', '.join(kept)}: {KEPT_OTHER}", resource=kept[0]
            )
        return out

    async def send_each(self, plan: WritePlan) -> dict[str, str]:
        """One request per resource, in order; references to earlier ones resolved as they come."""
        known = {s.planned.full_url: s.held.ref for s in plan.steps if s.held is not None}
        written: list[str] = []
        for step in plan.writes:
            out = await self._write_one(
                step, resolve_refs(step.planned.body, known), tuple(written)
            )
            known[step.planned.full_url] = out
            written.append(out)
        if plan.provenance is not None and plan.save is not None:
            await self.send_provenance(resolve_refs(plan.provenance, known), plan.save, written)
        return known

    async def send_provenance(self, body: Json, save: str, written: list[str]) -> str | None:
        """A conditional create on the save's tag: a repeat (a retry, or the next save re-sending
        one that failed) cannot write a second. Returns its reference when it was created (201) and
        the server says where; None when it was there already (200) or not said."""
        response = await self._send(
            "POST",
            "Provenance",
            "Provenance",
            body=body,
            headers={"If-None-Exist": f"_tag={save_tag(save)}"},
            retry=True,
        )
        if response.status_code not in (200, 201):
            raise self.refused("Provenance", response, tuple(written))
        if response.status_code == 200:
            return None
        ref = _ref_of(response.headers.get("Location"), _json_or_none(response), "Provenance")
        return ref or "Provenance"

    async def provenances_of(self, saves: list[str]) -> set[str] | None:
        """Which of these saves have their Provenance on the server (by its tag, every page);
        None when the token may not read Provenance (401/403: the SMART app asks create only)."""
        found: set[str] = set()
        url: str | None = f"Provenance?_tag={','.join(save_tag(s) for s in saves)}&_count=100"
        pages = 0
        while url is not None and pages < MAX_SEARCH_PAGES:
            pages += 1
            try:
                resources, url = await self._search_page("Provenance", url, "save tag")
            except WriteBackError as exc:
                if exc.status in (401, 403):
                    return None
                raise
            # Tags read from what is returned: a server ignoring `_tag` returns others too.
            found.update(save for r in resources for save in saves_tagged(r))
        return found

    async def _write_one(self, step: Step, body: Json, written: tuple[str, ...]) -> str:
        p = step.planned
        if step.action == "create":
            search = key_search(p.resource_type, p.key, self.capabilities.identifier_types)
            headers = {"If-None-Exist": search}
            response = await self._send(
                "POST", p.resource_type, step.label, body=body, headers=headers, retry=True
            )
        else:
            assert step.held is not None
            headers = {"If-Match": f'W/"{step.held.version}"'} if step.held.version else {}
            response = await self._send(
                "PUT", step.held.ref, step.label, body=body, headers=headers, retry=False
            )
        if response.status_code not in (200, 201):
            raise self.refused(step.label, response, written)
        if step.held is not None:  # updated where it was: FHIR asks no Location of an update
            return step.held.ref
        if _kept_other(step, str(response.status_code), _json_or_none(response)):
            raise WriteBackError(
                f"{step.label}: {KEPT_OTHER}", resource=step.label, written=written
            )
        ref = _ref_of(response.headers.get("Location"), _json_or_none(response), p.resource_type)
        if ref is None:
            raise WriteBackError(
                f"{step.label}: the server wrote it but gave no id",
                resource=step.label,
                written=written,
            )
        return ref


KEPT_OTHER = (
    "the server holds other values, saved meanwhile by another save, and kept them; "
    "save again to write these"
)


def _kept_other(step: Step, status: str, resource: object) -> bool:
    """Whether a conditional create was answered by what the server already held (200, not 201)
    and that is not this content: another save wrote it after this one searched, and these values
    were not written. Unconfirmed (no resource returned) counts as other: saving again is safe."""
    if step.action != "create" or status != "200":
        return False
    held = held_from(resource) if isinstance(resource, dict) else None
    return held is None or held[1].digest != step.planned.digest


def _json_or_none(response: httpx.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return None


async def save(
    source: RecordSource,
    writer: FhirWriter,
    tables: MappingTables,
    request: RecordRequest,
    entered: Mapping[str, InputValue],
    *,
    user: str | None,
    now: datetime,
    dry_run: bool = False,
    updatable: frozenset[str] | None = None,
) -> SaveResult:
    """Read the record, build what the server should hold, and write what differs.

    `updatable`: the resource types this save may update (None: any). A plan that would update
    another type raises UpdateNotGrantedError before anything is written (a create-only SMART grant).
    """
    history = history_planner(tables, now.date())
    record = await read_record(source, request, lambda rec: find_order(rec, tables)[0], history)
    if record.patient is None:
        why = record.incomplete.get("patient", "not on the server")
        raise WriteBackError(f"Patient/{request.patient_id}: cannot be read ({why})")
    if record.incomplete:
        # Scores from part of the record would overwrite better ones already saved: write nothing.
        what = "; ".join(record.incomplete.values())
        raise WriteBackError(f"the record could not be read completely, nothing written: {what}")
    order, _ = find_order(record, tables)
    if order is None or order.id is None:
        why = (
            record.incomplete.get("order") or "no open CTO-PCI order for this patient; give --order"
        )
        raise WriteBackError(f"the order to attach the findings to cannot be read: {why}")
    patient = f"Patient/{request.patient_id}"
    subject = order.subject.reference if order.subject is not None else None
    if subject is None or not (subject == patient or subject.endswith(f"/{patient}")):
        # A given order is read by id: it may be anyone's, and its vessel and operator score.
        raise WriteBackError(f"{order.ref} is not an order of {patient}: nothing written")
    ctx = SaveContext(request.patient_id, order.ref, order_body_site(order, tables), user, now)
    case = score_with_entered(record, tables, now.date(), entered, ctx)
    planned = build_resources(tables, ctx, case, entered)
    async with _serialised(f"{writer.base}|{ctx.patient_id}|{ctx.order_ref}"):
        capabilities = await writer.read_capabilities()
        plan = plan_writes(planned, await writer.held(planned), ctx)
        _validate(plan)
        if updatable is not None:
            blocked = tuple(
                s.label
                for s in plan.writes
                if s.action == "update" and s.planned.resource_type not in updatable
            )
            if blocked:
                raise UpdateNotGrantedError(blocked)
        labels = {s.planned.full_url: s.planned.what for s in plan.steps}
        if dry_run:
            bundle = transaction(plan, capabilities.identifier_types)
            return _result(plan, {}, "dry-run", labels, bundle)
        # Before this save's writes: a failure here leaves nothing of them half-written.
        recovered = await _lost_provenances(writer, plan, ctx)
        if plan.writes and capabilities.transaction:
            result = _result(plan, await writer.send_transaction(plan), "transaction", labels)
        elif plan.writes:
            result = _result(plan, await writer.send_each(plan), "sequential", labels)
        else:
            result = _result(plan, {}, "sequential" if recovered else "nothing to write", labels)
        for ref in recovered:
            result.created.append(ref)
            result.labels[ref] = "provenance of an earlier save (its own was not written)"
        return result


async def _lost_provenances(writer: FhirWriter, plan: WritePlan, ctx: SaveContext) -> list[str]:
    """The Provenances of earlier saves whose resources this one leaves unchanged, sent if missing
    (a sequential save whose Provenance POST failed after its writes). With them there: one read,
    no write. Returns those created."""
    saves = saves_named(plan)
    found = await writer.provenances_of(saves) if saves else None
    # Not readable (or nothing to look for): as before, nothing more is written.
    lost = lost_provenances(plan, found, ctx) if found is not None else []
    for body in lost:
        _validate_one("Provenance", body)
    created = []
    for body in lost:
        (save,) = saves_tagged(body)
        ref = await writer.send_provenance(body, save, [])
        if ref is not None:
            created.append(ref)
    return created


def _validate(plan: WritePlan) -> None:
    # What is sent: unchanged resources are already on the server and are not re-validated.
    bodies = [(s.label, s.planned.body) for s in plan.writes]
    if plan.provenance is not None:
        bodies.append(("Provenance", plan.provenance))
    for label, body in bodies:
        _validate_one(label, body)


def _validate_one(label: str, body: Json) -> None:
    try:
        validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise WriteBackError(
            f"{label}: not valid FHIR R4 at {where}: {first['msg']}", resource=label
        ) from None


def _result(
    plan: WritePlan,
    written: Mapping[str, str],
    mode: Mode,
    labels: Mapping[str, str],
    bundle: Json | None = None,
) -> SaveResult:
    result = SaveResult(created=[], updated=[], unchanged=[], mode=mode, bundle=bundle)
    for step in plan.steps:
        ref = (
            step.held.ref
            if step.held
            else written.get(step.planned.full_url, step.planned.full_url)
        )
        result.labels[ref] = labels[step.planned.full_url]
        {"create": result.created, "update": result.updated, "unchanged": result.unchanged}[
            step.action
        ].append(ref)
    return result
