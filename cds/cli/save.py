"""`cto-cds save`: write the clinician's findings and the scores back to a FHIR server.

The inputs file is validated exactly like `cto-cds score FILE` (cds/scoring/inputs.py); it may hold
lesion findings only, since the rest is read from the record. The work is done by cds/writeback/ (the
same path the SMART app will use); this module parses options and prints.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from cds.cli.record import _bad, _order_id
from cds.mapping.tables import load_tables
from cds.outbound_tls import check_outbound_tls
from cds.output.console import make_console
from cds.sources.fhir import FetchLimits, FhirRestSource
from cds.sources.record import RecordRequest
from cds.sources.searches import valid_id
from cds.urls import masked
from cds.writeback.build import check_entered
from cds.writeback.send import FhirWriter, SaveResult, save

_USER_TYPES = ("Practitioner", "PractitionerRole")


@dataclass(frozen=True)
class SaveOptions:
    fhir: str
    patient: str
    order: str | None
    raw_inputs: object
    user: str | None
    token_env: str | None
    mappings: Path | None
    dry_run: bool


def _user(value: str | None) -> str | None:
    if value is None:
        return None
    kind, _, uid = value.partition("/")
    if kind not in _USER_TYPES or not valid_id(uid):
        raise _bad("--user", value, "must be Practitioner/ID or PractitionerRole/ID")
    return value


async def _run(options: SaveOptions) -> SaveResult:
    if not options.fhir.startswith(("http://", "https://")):
        raise _bad("--fhir", masked(options.fhir), "must be an http(s) FHIR base URL")
    if not valid_id(options.patient):
        raise _bad("--patient", options.patient, "is not a FHIR id")
    order_id = _order_id(options.order)
    user = _user(options.user)
    entered = check_entered(options.raw_inputs)
    token = None
    if options.token_env is not None:
        token = os.environ.get(options.token_env)
        if not token:
            raise _bad("--token-env", options.token_env, "names an empty or unset variable")
        if not (token.isascii() and token.isprintable() and token.strip() == token):
            # httpx refuses it as a header: the reader then blamed the server. Never shown.
            why = "holds a token that cannot be sent in an HTTP header"
            raise _bad("--token-env", options.token_env, why)
    tables = load_tables(options.mappings)
    check_outbound_tls()  # one line, not httpx's traceback, for a bad SSL_CERT_FILE
    async with httpx.AsyncClient() as client:
        # A site command, not a hook: no 2 s budget, and a save needs the whole record.
        limits = FetchLimits(timeout=10.0, deadline=60.0)
        source = FhirRestSource(options.fhir, client, token=token, limits=limits)
        ids = tuple(i for i in (options.patient, order_id) if i)
        writer = FhirWriter(options.fhir, client, token=token, redact_ids=ids)
        return await save(
            source,
            writer,
            tables,
            RecordRequest(patient_id=options.patient, order_id=order_id),
            entered,
            user=user,
            now=datetime.now(UTC).replace(microsecond=0),
            dry_run=options.dry_run,
        )


def save_command(options: SaveOptions, as_json: bool) -> None:
    result = asyncio.run(_run(options))
    if result.bundle is not None:
        print(json.dumps(result.bundle, ensure_ascii=False, indent=2))
        return
    if as_json:
        print(
            json.dumps(
                {
                    "created": result.created,
                    "updated": result.updated,
                    "unchanged": result.unchanged,
                },
                indent=2,
            )
        )
        return
    console = make_console()
    for action, refs in (
        ("created", result.created),
        ("updated", result.updated),
        ("unchanged", result.unchanged),
    ):
        for ref in refs:
            console.print(f"{action:9} {ref}  {result.labels.get(ref, '')}", highlight=False)
    if result.mode == "nothing to write":
        console.print("nothing to write: the server already holds these findings and scores")
