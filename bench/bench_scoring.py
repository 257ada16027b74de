"""Throughput of the pure scoring core: all eight scores for one case.

Run: .venv/bin/python bench/bench_scoring.py
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from cds import parse_inputs, score_all

ROOT = Path(__file__).resolve().parents[1]


def measure(name: str, raw: dict[str, object], seconds: float = 2.0) -> None:
    inputs = parse_inputs(raw)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        score_all(inputs)
        count += 1
    per_call = (time.perf_counter() - start) / count
    print(f"{name:45s} {per_call * 1e6:8.0f} µs per case ({count} runs)")


if __name__ == "__main__":
    for path in sorted((ROOT / "examples").glob("*.json")):
        measure(path.name, json.loads(path.read_text()))
    measure("all inputs unknown", {})
