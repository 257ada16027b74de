"""The service's Prometheus metrics (`/metrics`, docs/operations.md): what each layer counts.

One registry per process. Labels are bounded sets only (route templates, hook names, outcomes,
bands, FHIR resource types, refusal slugs): never a patient, order, token or URL. Several uvicorn
workers each count their own requests, and a scrape reaches one of them: with
`PROMETHEUS_MULTIPROC_DIR` set to an empty directory before the workers start (`cto-cds serve
--workers N` makes one: cds/cli/app.py, `shared_metrics`), `/metrics` adds up every worker's files
(prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from cds.errors import ConfigError

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
REGISTRY = CollectorRegistry(auto_describe=True)

# Seconds: a hook answers in milliseconds from prefetch, up to the FHIR deadline (3 s) without.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "cto_cds_http_requests",
    "HTTP requests answered, by route template, method and status code.",
    ["route", "method", "status"],
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "cto_cds_http_request_duration_seconds",
    "Time from the request's arrival to the end of its response, by route template and method.",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
HOOK_CALLS = Counter(
    "cto_cds_hook_calls",
    "Hook calls by hook and outcome: card, no_card (not a CTO-PCI order) or error.",
    ["hook", "outcome"],
    registry=REGISTRY,
)
HOOK_DURATION = Histogram(
    "cto_cds_hook_duration_seconds",
    "Time to answer a hook call (checks, FHIR reads, scoring, card, audit), by hook and outcome.",
    ["hook", "outcome"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
CARDS = Counter(
    "cto_cds_cards",
    "Cards returned, by Operator-CTO band (undetermined: unknown inputs leave several reachable).",
    ["band"],
    registry=REGISTRY,
)
FHIR_READ_DURATION = Histogram(
    "cto_cds_fhir_read_duration_seconds",
    "One planned read or search on a FHIR server (all its pages and retries), by resource type.",
    ["resource_type"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
FHIR_READ_ERRORS = Counter(
    "cto_cds_fhir_read_errors",
    "FHIR reads or searches that did not complete, by resource type and problem.",
    ["resource_type", "problem"],
    registry=REGISTRY,
)
FEEDBACK = Counter(
    "cto_cds_feedback",
    "Feedback items accepted (stored or already stored), by outcome.",
    ["outcome"],
    registry=REGISTRY,
)
JWT_REFUSALS = Counter(
    "cto_cds_jwt_refusals",
    "Client JWTs refused (401), by reason slug (cds/auth/client_jwt.py).",
    ["reason"],
    registry=REGISTRY,
)
DATABASE_ERRORS = Counter(
    "cto_cds_database_errors",
    "Database errors, by when: jti (replay check, 503), request (503), audit (card returned "
    "without its audit row or app handle), prune (expired rows, retried).",
    ["during"],
    registry=REGISTRY,
)

MAPPING_TABLES = Gauge(
    "cto_cds_mapping_tables_info",
    "1 for the version of the mapping tables this process scores with (cds/mapping/tables.py): "
    "replicas that report different versions map the same record differently.",
    ["version"],
    registry=REGISTRY,
    # `serve --workers N`: one series per version the live workers loaded (the same files: one).
    multiprocess_mode="livemax",
)


def check_multiprocess_dir() -> None:
    """ConfigError unless `PROMETHEUS_MULTIPROC_DIR`, when set, is a directory this process may
    write: prometheus-client writes a file there at the first value, inside the server's start-up,
    where a missing or read-only directory was a traceback and no service (each worker's, again
    and again, with `--workers N`)."""
    directory = os.environ.get(MULTIPROC_ENV)
    if not directory:
        return
    if not os.path.isdir(directory):
        why = "does not exist" if not os.path.exists(directory) else "is not a directory"
    elif not os.access(directory, os.W_OK | os.X_OK):
        why = "is not writable by this user"
    else:
        return
    raise ConfigError(
        f"{MULTIPROC_ENV}: {directory!r} {why} (the workers' shared metrics; unset, "
        "`cto-cds serve --workers N` makes its own)"
    )


def exposition() -> tuple[bytes, str]:
    """The text format of every metric (all workers' when in multiprocess mode) and its type."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
