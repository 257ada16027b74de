"""Load benchmark: the real service over HTTP against a floor, HealthChain, and its own targets.

One command, all variants in one run, round-robin (each round runs every variant once, so the noise of
a shared machine falls on all of them alike):

    .venv/bin/python bench/load.py                # ≈ 12 minutes; --seconds/--rounds to change
    .venv/bin/python bench/load.py --alg ES384 --rounds 5 --json /tmp/load.json

Started as subprocesses on loopback: `cto-cds serve` (SQLite in a temporary directory, one worker,
a trust file with the bench's own key), the floor `bench/floor_app.py` under the same uvicorn settings,
HealthChain serving a fixed card (`bench/healthchain_app.py`, in bench/.venv-healthchain, created on
first use; skipped when it cannot be installed), sekmet with the synthetic cohort, and a proxy adding
100 ms to each FHIR request (`bench/delay_proxy.py`). Client JWTs are signed before the clock starts.

Variants and targets (issue 10, docs/performance.md):
(a) order-select, full prefetch (≈ 87 KB): ≥ 0.5× the floor's throughput, p99 ≤ 30 ms at 100 req/s;
(b) a non-CTO order, same prefetch: ≥ 0.8× the floor;
(c) no prefetch, the service reads the FHIR server behind the proxy: ≤ 1.5× one query + 30 ms;
(d) cold start (process start → first 200) ≤ 2 s, on a new database (migrations run) and again on
that database at head (a restart, another replica); RSS after 20,000 calls ≤ 200 MB and flat.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load_bodies import bodies  # noqa: E402
from bench.load_client import Connection, Run, closed_loop, fixed_rate, percentile, post  # noqa: E402
from cds.demo.children import stop_child  # noqa: E402
from cds.demo.cohort_data import COHORT_NDJSON, load_ndjson  # noqa: E402
from cds.demo.ehr import EhrKeys, sign_client_jwt  # noqa: E402
from cds.demo.fhir_server import FHIR_JSON, load_cohort, running_fhir_server  # noqa: E402
from cds.demo.ports import free_port  # noqa: E402

HOST = "127.0.0.1"
ISS = "https://ehr.bench.example.org"
SERVICE_PATH = "/cds-services/operator-cto"
HEALTHCHAIN_PATH = "/cds/cds-services/operator-cto"
HEALTHCHAIN_VENV = ROOT / "bench" / ".venv-healthchain"
HEALTHCHAIN_PIN = "healthchain==0.16.1"
VENV_BIN = Path(sys.executable).parent


# -- processes ---------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    cold_start: float = float("nan")
    cold_cpu: float = float("nan")
    """CPU seconds the process had used when it first answered (the start-up's own cost)."""

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        """RSS of the process and its children (the workers under `--workers N`)."""
        pids = [self.proc.pid]
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        if children.exists():
            pids += [int(p) for p in children.read_text().split()]
        total = 0.0
        for pid in pids:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        return total


def _tail(path: Path) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-15:])


@contextmanager
def started(
    name: str, cmd: list[str], env: dict[str, str], port: int, tmp: Path
) -> Iterator[Server]:
    """Start `cmd`, wait for GET /healthz (or /metadata) → 200, measuring the cold start."""
    log = tmp / f"{name}.log"
    begin = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
        )
    server = Server(name, port, proc, log)
    try:
        probe = "/metadata" if name == "proxy" else "/healthz"
        if name == "healthchain":
            probe = "/cds/cds-discovery"
        with httpx.Client(timeout=2.0) as client:
            deadline = begin + 60
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}:\n{_tail(log)}")
                try:
                    if client.get(f"http://{HOST}:{port}{probe}").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"{name} not up after 60 s:\n{_tail(log)}")
                time.sleep(0.01)
        server.cold_start = time.perf_counter() - begin
        server.cold_cpu = server.cpu_seconds()
        yield server
    finally:
        stop_child(proc, timeout=15)


def healthchain_python() -> Path | None:
    """bench/.venv-healthchain's python with HealthChain installed (created once), or None."""
    python = HEALTHCHAIN_VENV / "bin" / "python"
    if not python.exists():
        print(
            f"bench: installing {HEALTHCHAIN_PIN} into {HEALTHCHAIN_VENV} (once) …", file=sys.stderr
        )
        made = subprocess.run(
            [sys.executable, "-m", "venv", str(HEALTHCHAIN_VENV)], capture_output=True, check=False
        )
        if made.returncode != 0:
            return None
    probe = subprocess.run(
        [str(python), "-c", "import healthchain"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        pip = [str(python), "-m", "pip", "install", "-q", HEALTHCHAIN_PIN]
        if subprocess.run(pip, capture_output=True, check=False).returncode != 0:
            shutil.rmtree(HEALTHCHAIN_VENV, ignore_errors=True)
            return None
    return python


# -- tokens ------------------------------------------------------------------------------------


_KEYS: EhrKeys | None = None


def _init_signer(keys: EhrKeys) -> None:
    global _KEYS
    _KEYS = keys


def _sign(args: tuple[str, int]) -> list[str]:
    aud, n = args
    assert _KEYS is not None
    return [sign_client_jwt(_KEYS, ISS, aud, lifetime=3000) for _ in range(n)]


class Tokens:
    """Client JWTs signed ahead of time (in a process pool), one fresh jti per request."""

    def __init__(self, keys: EhrKeys, workers: int = 2) -> None:
        self._pool = ProcessPoolExecutor(workers, initializer=_init_signer, initargs=(keys,))
        self._workers = workers

    def sign(self, aud: str, n: int) -> list[str]:
        chunk = max(1, -(-n // (self._workers * 4)))
        jobs = [(aud, min(chunk, n - i)) for i in range(0, n, chunk)]
        return [t for part in self._pool.map(_sign, jobs) for t in part]

    def close(self) -> None:
        self._pool.shutdown()


# -- variants ----------------------------------------------------------------------------------


@dataclass
class Target:
    """One endpoint under load: which server, path and body; its requests pre-built."""

    server: Server
    path: str
    body: bytes
    tokens: Tokens
    requests: list[bytes] = field(default_factory=list)
    expected_rate: float = 1500.0
    calls: int = 0

    def prepare(self, n: int) -> None:
        aud = f"http://{HOST}:{self.server.port}{self.path}"
        self.requests = [
            post(HOST, self.server.port, self.path, self.body, t) for t in self.tokens.sign(aud, n)
        ]

    def next_request(self) -> bytes:
        self.calls += 1
        if not self.requests:  # the pool ran dry: sign in the loop (slower; rare with the estimate)
            self.prepare(1)
        return self.requests.pop()


@dataclass
class Series:
    runs: list[Run] = field(default_factory=list)

    def add(self, run: Run) -> None:
        self.runs.append(run)

    @property
    def latencies(self) -> list[float]:
        return [x for run in self.runs for x in run.latencies]

    @property
    def rate(self) -> float:
        elapsed = sum(r.elapsed for r in self.runs)
        return sum(r.ok for r in self.runs) / elapsed if elapsed else float("nan")

    @property
    def errors(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for run in self.runs:
            for status, n in run.errors.items():
                out[status] = out.get(status, 0) + n
        return out

    def p(self, q: float) -> float:
        return percentile(self.latencies, q) * 1e3


async def throughput(target: Target, connections: int, seconds: float) -> Run:
    target.prepare(int(target.expected_rate * seconds * 1.3) + connections)
    run = await closed_loop(HOST, target.server.port, target.next_request, connections, seconds)
    target.expected_rate = max(run.ok / run.elapsed, 50.0)
    return run


async def at_rate(target: Target, rate: float, seconds: float) -> Run:
    target.prepare(int(rate * seconds))
    return await fixed_rate(HOST, target.server.port, target.next_request, rate, seconds)


async def sequential(target: Target, n: int, get: bytes | None = None) -> list[float]:
    """n calls one after the other (latency, seconds); `get` sends that GET instead of a POST."""
    if get is None:
        target.prepare(n)
    conn = await Connection.open(HOST, target.server.port)
    out = []
    try:
        for _ in range(n):
            start = time.perf_counter()
            status, _ = await conn.send(get if get is not None else target.next_request())
            if status != 200:
                raise RuntimeError(f"{target.server.name} {target.path}: HTTP {status}")
            out.append(time.perf_counter() - start)
    finally:
        conn.close()
    return out


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nAccept: {FHIR_JSON}\r\n\r\n".encode()


def _hook_searches(patient: str, cohort: list[dict[str, Any]]) -> list[str]:
    """The FHIR reads the hook makes without prefetch (the order names its performer)."""
    from cds.sources.searches import operator_searches, patient_searches

    order = next(
        r
        for r in cohort
        if r["resourceType"] == "ServiceRequest"
        and r["subject"]["reference"] == f"Patient/{patient}"
    )
    operator = order["performer"][0]["reference"].split("/")[-1]
    return ["/" + s.path for s in patient_searches(patient) + operator_searches(operator)]


# -- checks outside the timing -----------------------------------------------------------------


def check_answers(targets: dict[str, Target]) -> None:
    """Each endpoint answers what it should (httpx, outside the timed loops)."""
    with httpx.Client(timeout=30.0) as client:
        for name, target in targets.items():
            aud = f"http://{HOST}:{target.server.port}{target.path}"
            token = target.tokens.sign(aud, 1)[0]
            answer = client.post(
                aud,
                content=target.body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            if answer.status_code != 200:
                raise RuntimeError(f"{name}: HTTP {answer.status_code}: {answer.text[:300]}")
            cards = answer.json()["cards"]
            want = 0 if name == "non_cto" else 1
            if len(cards) != want:
                raise RuntimeError(
                    f"{name}: {len(cards)} cards, expected {want}: {answer.text[:300]}"
                )
            if name in {"full", "no_prefetch"} and "Operator-CTO" not in cards[0]["summary"]:
                raise RuntimeError(f"{name}: not a score card: {cards[0]['summary']!r}")
            if name == "no_prefetch" and "could not be read" in json.dumps(cards[0]):
                raise RuntimeError(
                    f"{name}: the card says data could not be read: {cards[0]['detail'][:300]}"
                )


# -- report ------------------------------------------------------------------------------------


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = next(
        line.split()[1]
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} CPUs ({model}), {int(mem) // 1024} MiB RAM, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; load average {load[0]:.1f} at start (other jobs share the machine)"
    )


def ms(x: float) -> str:
    return f"{x:.1f}"


def compile_package() -> None:
    """Write the package's bytecode before anything starts, as installing the wheel does (pip
    compiles at install; the image only reads it). A checkout run with PYTHONDONTWRITEBYTECODE set
    (the image sets it; so did the machine of docs/performance.md) otherwise compiles every module
    at every start: ≈ 0.6 s of (d)'s cold start that no installed service pays."""
    if not compileall.compile_dir(ROOT / "cds", quiet=1):
        raise RuntimeError("could not compile the cds package")


def start_times(
    n: int, service_env: dict[str, str], tmp: Path, *, fresh: bool
) -> list[tuple[float, float]]:
    """(wall, CPU) seconds from process start to the first 200 of `n` starts of `cto-cds serve`,
    each stopped once it answered: with `fresh`, each on a new SQLite file (migrations run), else
    on `service_env`'s database."""
    times = []
    for i in range(n):
        port = free_port()
        env = {**service_env, "CTO_CDS_PUBLIC_BASE_URL": f"http://{HOST}:{port}"}
        name = f"start-{'new' if fresh else 'head'}-{i}"
        if fresh:
            env["CTO_CDS_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp / f'{name}.db'}"
        cmd = [str(VENV_BIN / "cto-cds"), "serve", "--host", HOST, "--port", str(port)]
        with started(name, cmd, env, port, tmp) as server:
            times.append((server.cold_start, server.cold_cpu))
    return times


def _median_start(times: list[tuple[float, float]]) -> tuple[float, float]:
    return sorted(times)[len(times) // 2]


async def run_all(args: argparse.Namespace, stack: ExitStack, tmp: Path) -> dict[str, Any]:
    compile_package()
    keys = EhrKeys.generate(args.alg, kid="bench")
    tokens = Tokens(keys)
    stack.callback(tokens.close)
    trust = tmp / "trusted.json"
    trust.write_text(json.dumps([{"iss": ISS, "jwks": keys.jwks()}]))
    # (d) first, while nothing else runs, three starts each (one start on a shared machine varies
    # by ±0.4 s): on new databases (migrations run), then on the first of them, now at head (as
    # for a restart or another replica).
    start_env = {"CTO_CDS_TRUSTED_CLIENTS": str(trust)}
    starts = {"new": start_times(3, start_env, tmp, fresh=True)}
    at_head = {**start_env, "CTO_CDS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'start-new-0.db'}"}
    starts["head"] = start_times(3, at_head, tmp, fresh=False)
    cohort = load_ndjson(COHORT_NDJSON)
    (tmp / "fhir").mkdir()
    fhir = stack.enter_context(running_fhir_server(tmp / "fhir"))
    with httpx.Client(timeout=60.0, headers={"Accept": FHIR_JSON}) as client:
        load_cohort(fhir, cohort, client)
    proxy_port = free_port()
    proxy_base = f"http://{HOST}:{proxy_port}"
    uvicorn_args = ["--host", HOST, "--log-level", "warning", "--no-access-log"]
    proxy = stack.enter_context(
        started(
            "proxy",
            [
                str(VENV_BIN / "python"),
                "-m",
                "uvicorn",
                "bench.delay_proxy:app",
                "--port",
                str(proxy_port),
                *uvicorn_args,
            ],
            {"BENCH_TARGET": fhir, "BENCH_SELF": proxy_base, "BENCH_DELAY_MS": str(args.delay_ms)},
            proxy_port,
            tmp,
        )
    )
    port = free_port()
    service_env = {
        "CTO_CDS_PUBLIC_BASE_URL": f"http://{HOST}:{port}",
        "CTO_CDS_DATABASE_URL": args.database_url or f"sqlite+aiosqlite:///{tmp / 'service.db'}",
        "CTO_CDS_TRUSTED_CLIENTS": str(trust),
        "CTO_CDS_ALLOWED_FHIR_SERVERS": proxy_base,
    }
    serve = [str(VENV_BIN / "cto-cds"), "serve", "--host", HOST, "--port", str(port)]
    serve += ["--workers", str(args.workers)]
    service = stack.enter_context(started("service", serve, service_env, port, tmp))
    floor_port = free_port()
    floor_cmd = [
        str(VENV_BIN / "python"),
        "-m",
        "uvicorn",
        "bench.floor_app:app",
        "--port",
        str(floor_port),
        "--host",
        HOST,
        "--no-access-log",
        "--workers",
        str(args.workers),
    ]
    floor_env = {
        "BENCH_TRUSTED_CLIENTS": str(trust),
        "BENCH_PUBLIC_BASE_URL": f"http://{HOST}:{floor_port}",
    }
    floor = stack.enter_context(started("floor", floor_cmd, floor_env, floor_port, tmp))
    healthchain: Server | None = None
    hc_python = None if args.no_healthchain else healthchain_python()
    if hc_python is not None:
        hc_port = free_port()
        hc_cmd = [str(hc_python), str(ROOT / "bench" / "healthchain_app.py"), str(hc_port)]
        healthchain = stack.enter_context(started("healthchain", hc_cmd, {}, hc_port, tmp))

    body = {
        k: json.dumps(v, separators=(",", ":")).encode()
        for k, v in bodies(args.patient, proxy_base).items()
    }
    targets = {
        "full": Target(service, SERVICE_PATH, body["full"], tokens, expected_rate=400),
        "non_cto": Target(service, SERVICE_PATH, body["non_cto"], tokens, expected_rate=800),
        "no_prefetch": Target(service, SERVICE_PATH, body["no_prefetch"], tokens),
        "floor": Target(floor, SERVICE_PATH, body["full"], tokens),
    }
    if healthchain is not None:
        targets["healthchain"] = Target(healthchain, HEALTHCHAIN_PATH, body["full"], tokens)
    check_answers({k: v for k, v in targets.items() if k != "healthchain"})
    query = _get(f"/Condition?patient={args.patient}&_count=100")
    query_target = Target(proxy, "", b"", tokens)

    closed = {
        name: Series() for name in ("floor", "full", "non_cto", "healthchain") if name in targets
    }
    rated = {name: Series() for name in ("floor", "full")}
    hook_c: list[float] = []
    query_c: list[float] = []
    for number in range(1, args.rounds + 1):
        print(f"bench: round {number}/{args.rounds} …", file=sys.stderr)
        for name, series in closed.items():
            series.add(await throughput(targets[name], args.connections, args.seconds))
        for name, series in rated.items():
            series.add(await at_rate(targets[name], args.rate, args.seconds))
        for _ in range(args.fetch_calls):
            query_c += await sequential(query_target, 1, get=query)
            hook_c += await sequential(targets["no_prefetch"], 1)

    # Each search the hook sends, alone through the proxy: no hook can beat its slowest one.
    slowest_query = 0.0
    for path in _hook_searches(args.patient, cohort):
        alone = await sequential(query_target, 3, get=_get(path))
        slowest_query = max(slowest_query, statistics.median(alone))

    service_calls = sum(t.calls for n, t in targets.items() if t.server is service)
    rss = [(service_calls, service.rss_mb())]
    # Flat means a span: at least two more readings after this one, however many calls the rounds
    # served (a fast machine can pass --rss-calls in the rounds alone and leave one reading).
    goal = max(args.rss_calls, service_calls + 4000) if args.rss_calls else 0
    while service_calls < goal:
        step = min(2000, goal - service_calls)
        target = targets["full"]
        target.prepare(step + args.connections)
        await closed_loop(
            HOST, port, target.next_request, args.connections, step / target.expected_rate
        )
        service_calls = sum(t.calls for n, t in targets.items() if t.server is service)
        rss.append((service_calls, service.rss_mb()))

    return {
        "closed": closed,
        "rated": rated,
        "hook_c": hook_c,
        "query_c": query_c,
        "cold_service": service.cold_start,
        "cold_floor": floor.cold_start,
        "cold_cpu": service.cold_cpu,
        "starts": starts,
        "slowest_query": slowest_query,
        "hook_searches": _hook_searches(args.patient, cohort),
        "rss": rss,
        "body_bytes": len(body["full"]),
        "healthchain": healthchain is not None,
    }


def report(args: argparse.Namespace, r: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    closed: dict[str, Series] = r["closed"]
    rated: dict[str, Series] = r["rated"]
    floor = closed["floor"].rate
    lines = [
        f"Machine: {machine()}",
        f"Command: .venv/bin/python bench/load.py {' '.join(sys.argv[1:])}".rstrip(),
        f"JWT {args.alg}; {args.workers} worker(s) for the service and the floor; "
        f"{'PostgreSQL' if (args.database_url or '').startswith('postgres') else 'SQLite'}; "
        f"{args.rounds} rounds × {args.seconds:g} s per variant, {args.connections} connections; "
        f"full prefetch body {r['body_bytes'] / 1000:.1f} kB (patient {args.patient})",
        "",
        "| variant | req/s | × floor | p50 ms | p99 ms | errors |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    labels = {
        "floor": "floor (JWT + parse + fixed card)",
        "full": "(a) order-select, full prefetch",
        "non_cto": "(b) non-CTO order",
        "healthchain": "HealthChain, fixed card (no JWT check)",
    }
    for name, series in closed.items():
        lines.append(
            f"| {labels[name]} | {series.rate:.0f} | {series.rate / floor:.2f} | {ms(series.p(0.5))} | {ms(series.p(0.99))} | {series.errors or 0} |"
        )
    lines += [
        "",
        f"At a fixed {args.rate:g} req/s (latency from the scheduled send):",
        "",
        "| variant | p50 ms | p99 ms | max ms | errors |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, series in rated.items():
        lines.append(
            f"| {labels[name]} | {ms(series.p(0.5))} | {ms(series.p(0.99))} | {ms(max(series.latencies, default=float('nan')) * 1e3)} | {series.errors or 0} |"
        )
    hook = statistics.median(r["hook_c"]) * 1e3
    query = statistics.median(r["query_c"]) * 1e3
    limit_c = 1.5 * query + 30
    rss = r["rss"]
    lines += [
        "",
        f"(c) no prefetch, FHIR server +{args.delay_ms:g} ms per request: hook median {ms(hook)} ms (p90 {ms(percentile(r['hook_c'], 0.9) * 1e3)}), "
        f"one query median {ms(query)} ms → {hook / query:.2f}× one query (target ≤ 1.5× + 30 ms = {ms(limit_c)} ms)",
        f"    the slowest of the hook's {len(r['hook_searches'])} searches alone: {ms(r['slowest_query'] * 1e3)} ms "
        f"(the hook sends them concurrently: {hook / (r['slowest_query'] * 1e3):.2f}× that one)",
        "(d) cold start (process start → first 200, median of 3; CPU of that start): "
        + "; ".join(
            f"{label} {_median_start(r['starts'][key])[0]:.2f} s "
            f"({_median_start(r['starts'][key])[1]:.2f} s CPU; all: "
            + ", ".join(f"{wall:.2f}" for wall, _ in r["starts"][key])
            + ")"
            for key, label in (
                ("new", "new database (migrations run)"),
                ("head", "database at head (a restart, another replica)"),
            )
        )
        + f"; the service under test {r['cold_service']:.2f} s, floor {r['cold_floor']:.2f} s;",
        "    service RSS by calls served: " + ", ".join(f"{n}: {mb:.0f} MB" for n, mb in rss),
    ]
    full, non_cto, fixed = (
        closed["full"].rate / floor,
        closed["non_cto"].rate / floor,
        rated["full"].p(0.99),
    )
    verdicts = {
        "(a) ≥ 0.5× floor": full >= 0.5,
        f"(a) p99 ≤ 30 ms at {args.rate:g} req/s": fixed <= 30,
        "(b) ≥ 0.8× floor": non_cto >= 0.8,
        "(c) ≤ 1.5× one query + 30 ms": hook <= limit_c,
        "(d) cold start ≤ 2 s, database at head": _median_start(r["starts"]["head"])[0] <= 2.0,
        "(d) cold start ≤ 2 s, new database": _median_start(r["starts"]["new"])[0] <= 2.0,
        "(d) RSS ≤ 200 MB": max(mb for _, mb in rss) <= 200,
    }
    if len(rss) >= 3:  # flat after warm-up: the later readings within 10 MB of the first
        verdicts["(d) RSS flat (within 10 MB after the rounds)"] = (
            max(abs(mb - rss[0][1]) for _, mb in rss[1:]) <= 10
        )
    if "healthchain" in closed:
        verdicts["beats HealthChain, (a) vs its fixed card"] = (
            closed["full"].rate > closed["healthchain"].rate
        )
    lines += [
        "",
        (
            "Targets: "
            if args.workers == 1
            else f"Targets (set for one worker; this run: {args.workers}): "
        )
        + "; ".join(f"{k}: {'met' if ok else 'MISSED'}" for k, ok in verdicts.items()),
    ]
    summary = {
        "throughput": {k: s.rate for k, s in closed.items()},
        "p50_ms": {k: s.p(0.5) for k, s in closed.items()},
        "p99_ms": {k: s.p(0.99) for k, s in closed.items()},
        "fixed_rate_p99_ms": {k: s.p(0.99) for k, s in rated.items()},
        "errors": {k: s.errors for k, s in closed.items()},
        "fixed_rate_errors": {k: s.errors for k, s in rated.items()},
        "hook_c_ms": hook,
        "query_ms": query,
        "cold_start_s": {k: _median_start(v)[0] for k, v in r["starts"].items()},
        "rss_mb": rss,
        "targets": verdicts,
    }
    return "\n".join(lines), summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per variant and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--rate", type=float, default=100.0, help="fixed rate for the p99 (req/s)")
    parser.add_argument("--fetch-calls", type=int, default=10, help="(c) calls per round")
    parser.add_argument("--delay-ms", type=float, default=100.0, help="(c) added per FHIR request")
    parser.add_argument(
        "--rss-calls",
        type=int,
        default=20_000,
        help="(d) service calls before the last RSS (at least 4,000 after the rounds; 0: no RSS)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes of the service and of the floor (the targets are for 1)",
    )
    parser.add_argument(
        "--database-url",
        help="the service's database (an empty one: it is migrated); default SQLite in a temp dir",
    )
    parser.add_argument("--alg", choices=["RS384", "ES384"], default="RS384")
    parser.add_argument("--patient", default="pt23")
    parser.add_argument("--no-healthchain", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cto-load-") as tmp, ExitStack() as stack:
        results = asyncio.run(run_all(args, stack, Path(tmp)))
    text, summary = report(args, results)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2, default=str))


if __name__ == "__main__":
    main()
