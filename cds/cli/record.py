"""`cto-cds score --bundle / --fhir`: read a record, map it, score it, print inputs with provenance.

With --fhir the reads share one deadline, CTO_CDS_FHIR_DEADLINE seconds (the service's setting of the
same name; default 3 s): a slow server or CI machine may need more than a hook's budget.
"""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx

from cds.errors import InputError, InputIssue
from cds.mapping.tables import MappingTables, load_tables
from cds.outbound_tls import check_outbound_tls
from cds.output.console import make_console, print_case
from cds.pipeline import score_patient
from cds.scored_case import ScoredCase
from cds.sources.fhir import FetchLimits, FhirRestSource
from cds.sources.record import RecordRequest, RecordSource
from cds.sources.searches import valid_id


@dataclass(frozen=True)
class RecordOptions:
    bundle: Path | None
    fhir: str | None
    patient: str | None
    order: str | None
    mappings: Path | None
    token_env: str | None
    today: str | None


def _bad(option: str, value: object, why: str) -> InputError:
    return InputError([InputIssue((option,), value, "invalid_option", why)])


def _order_id(order: str | None) -> str | None:
    if order is None:
        return None
    kind, _, oid = order.rpartition("/")
    if kind not in ("", "ServiceRequest") or not valid_id(oid):
        raise _bad("--order", order, "must be ServiceRequest/ID or ID")
    return oid


DEADLINE_ENV = "CTO_CDS_FHIR_DEADLINE"


def _limits() -> FetchLimits:
    value = os.environ.get(DEADLINE_ENV)
    if value is None:
        return FetchLimits()
    try:
        deadline = float(value)
    except ValueError:
        deadline = -1.0
    if not 0 < deadline <= 30:
        raise _bad(DEADLINE_ENV, value, "must be a number of seconds in (0, 30]")
    return FetchLimits(deadline=deadline, timeout=min(deadline, FetchLimits.timeout * 5))


def _today(value: str | None) -> date:
    if value is None:
        return date.today()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _bad("--today", value, "must be a date YYYY-MM-DD") from None


async def _run(options: RecordOptions) -> ScoredCase:
    tables = load_tables(options.mappings)
    today = _today(options.today)
    order_id = _order_id(options.order)
    if options.patient is not None and not valid_id(options.patient):
        raise _bad("--patient", options.patient, "is not a FHIR id")
    if options.bundle is not None:
        from cds.sources.files import FileSource

        file_source = FileSource.from_path(options.bundle)
        if options.patient is not None:
            patient_id = options.patient
        elif order_id is not None:  # the order names its patient (a multi-patient bundle)
            patient_id = file_source.order_patient_id(order_id)
        else:
            patient_id = file_source.only_patient_id()
        return await _score(file_source, patient_id, order_id, tables, today)
    assert options.fhir is not None
    if options.patient is None:
        raise _bad("--patient", None, "is required with --fhir")
    if not options.fhir.startswith(("http://", "https://")):
        raise _bad("--fhir", options.fhir, "must be an http(s) FHIR base URL")
    token = None
    if options.token_env is not None:
        token = os.environ.get(options.token_env)
        if not token:
            raise _bad("--token-env", options.token_env, "names an empty or unset variable")
    limits = _limits()
    check_outbound_tls()  # one line, not httpx's traceback, for a bad SSL_CERT_FILE
    async with httpx.AsyncClient() as client:
        rest = FhirRestSource(options.fhir, client, token=token, limits=limits)
        return await _score(rest, options.patient, order_id, tables, today)


async def _score(
    source: RecordSource, patient_id: str, order_id: str | None, tables: MappingTables, today: date
) -> ScoredCase:
    case, record = await score_patient(
        source, RecordRequest(patient_id=patient_id, order_id=order_id), tables, today
    )
    if record.patient is None:
        why = record.incomplete.get("patient", "not in the record")
        raise _bad("--patient", patient_id, f"Patient could not be read: {why}")
    if order_id is not None and record.order is None:
        why = record.incomplete.get("order", "not in the record")
        raise _bad("--order", order_id, f"order could not be read: {why}")
    return case


def score_from_record(options: RecordOptions, as_json: bool) -> None:
    case = asyncio.run(_run(options))
    if as_json:
        print(json.dumps(case.contract(), ensure_ascii=False, indent=2))
    else:
        print_case(case, make_console())
