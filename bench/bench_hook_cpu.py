"""CPU time per hook call in process: variants (a) order-select with full prefetch and (b) a non-CTO
order (bench/load_bodies.py), through the whole ASGI app (JWT, store, mapping, card, audit) over
`httpx.ASGITransport`, with SQLite in a temporary directory.

CPU time of the process (every thread: aiosqlite's included) per call, after 20 warm-up calls, for
each round; the variants alternate round by round so a shared machine's noise falls on both. The
figures in docs/performance.md ("Changes and what each did") come from this.

    .venv/bin/python bench/bench_hook_cpu.py [--calls 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load_bodies import bodies  # noqa: E402
from cds.auth.trust import TrustedClient  # noqa: E402
from cds.demo.ehr import EhrKeys, sign_client_jwt  # noqa: E402
from cds.main import create_app  # noqa: E402
from cds.settings import Settings  # noqa: E402

BASE = "http://testserver"
ISS = "https://ehr.bench.example.org"
PATH = "/cds-services/operator-cto"
FHIR = "http://127.0.0.1:9"  # allowed but never read: the prefetch is complete
WARM_UP = 20


async def run(calls: int, rounds: int) -> dict[str, list[float]]:
    keys = EhrKeys.generate("RS384", kid="bench")
    body = {
        k: json.dumps(v, separators=(",", ":")).encode() for k, v in bodies("pt23", FHIR).items()
    }
    results: dict[str, list[float]] = {"full": [], "non_cto": []}
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            public_base_url=BASE,
            allowed_fhir_servers=[FHIR],
            database_url=f"sqlite+aiosqlite:///{Path(tmp) / 'service.db'}",
        )
        # As `cto-cds serve` runs it: the start-up heap frozen out of the collector.
        app = create_app(
            settings, trusted=[TrustedClient(iss=ISS, jwks=keys.jwks())], freeze_gc=True
        )
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
                for _ in range(rounds):
                    for variant, per_call in results.items():
                        tokens = [
                            sign_client_jwt(keys, ISS, BASE + PATH, lifetime=3000)
                            for _ in range(calls + WARM_UP)
                        ]  # signing is the EHR's cost: before the clock starts
                        for n, token in enumerate(tokens):
                            if n == WARM_UP:
                                start = time.process_time()
                            answer = await client.post(
                                PATH,
                                content=body[variant],
                                headers={
                                    "Authorization": f"Bearer {token}",
                                    "Content-Type": "application/json",
                                },
                            )
                            if answer.status_code != 200:
                                raise RuntimeError(f"{variant}: HTTP {answer.status_code}")
                        await asyncio.sleep(0.05)  # let the write-behind batch land in the round
                        per_call.append((time.process_time() - start) / calls * 1e3)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for variant, per_call in asyncio.run(run(args.calls, args.rounds)).items():
        rounds = " ".join(f"{x:.2f}" for x in per_call)
        print(
            f"{variant}: ms CPU per call {rounds} "
            f"(median {statistics.median(per_call):.2f}, best {min(per_call):.2f})"
        )


if __name__ == "__main__":
    main()
