"""Latency of one order-select call through the whole service (JWT, prefetch, mapping, scoring, card,
audit) in process, with full prefetch — the EHR's hot path without the network.

Run: .venv/bin/python bench/bench_hook.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cds.demo.cohort_data import COHORT_NDJSON, load_ndjson  # noqa: E402
from tests.integration.service_harness import auth, full_prefetch, hook_body, service  # noqa: E402

SERVICE = "/cds-services/operator-cto"


def main(calls: int = 200) -> None:
    cohort = load_ndjson(COHORT_NDJSON)
    prefetch = full_prefetch("pt23", cohort)
    with tempfile.TemporaryDirectory() as tmp, service(Path(tmp), None) as client:
        timings = []
        for _ in range(calls):
            body = hook_body("order-select", "pt23", cohort, fhir_server=None, prefetch=prefetch)
            headers = auth(SERVICE)  # signing is the EHR's cost: outside the timing
            start = time.perf_counter()
            response = client.post(SERVICE, json=body, headers=headers)
            timings.append(time.perf_counter() - start)
            assert response.status_code == 200, response.text
    timings.sort()
    print(f"{calls} order-select calls, full prefetch (pt23), no operator server:")
    print(
        f"  median {statistics.median(timings) * 1e3:.1f} ms, "
        f"p95 {timings[int(0.95 * calls)] * 1e3:.1f} ms, max {timings[-1] * 1e3:.1f} ms"
    )


if __name__ == "__main__":
    main()
