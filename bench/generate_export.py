"""Generate a Bulk FHIR export (one NDJSON file per resource type) of N patients for batch benchmarks.

Patients are derived from the shipped synthetic cohort (cds/demo/cohort.ndjson): every patient with a
CTO-PCI order is copied with new ids (the copy number appended to every id it owns and every reference
to them) until N patients are written; the operators and their CTO-PCI history are written once, as a
registry's operators treat many patients. Streaming: memory does not grow with N.

Copies after the first are varied (`vary`, the default): each copy's birth year moves by up to ±15
years and each length in millimetres is scaled by 0.5–2.0 (seeded by the copy, so the export is the
same on every run). Exact copies would repeat the cohort's 32 input combinations ~300 times, and
anything kept per combination (the engine keeps whole score results) would look far faster than on a
real registry, whose ages and lengths vary.

    .venv/bin/python bench/generate_export.py 10000 /tmp/export
"""

from __future__ import annotations

import argparse
import json
import random
from collections import defaultdict
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import IO


def _load() -> list[dict[str, object]]:
    text = resources.files("cds.demo").joinpath("cohort.ndjson").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _patient(resource: dict[str, object]) -> str | None:
    if resource.get("resourceType") == "Patient":
        return str(resource["id"])
    subject = resource.get("subject")
    if isinstance(subject, dict):
        ref = str(subject.get("reference", ""))
        if ref.startswith("Patient/"):
            return ref.removeprefix("Patient/")
    return None


def _rename(value: object, owned: set[str], suffix: str) -> object:
    if isinstance(value, dict):
        out = {k: _rename(v, owned, suffix) for k, v in value.items()}
        ref = out.get("reference")
        if isinstance(ref, str) and ref in owned:
            out["reference"] = ref + suffix
        return out
    if isinstance(value, list):
        return [_rename(v, owned, suffix) for v in value]
    return value


def _varied(resource: dict[str, object], rng: random.Random) -> dict[str, object]:
    """A copy's own values: the birth year moved, lengths in mm scaled (see the module docstring)."""
    birth = resource.get("birthDate")
    if resource.get("resourceType") == "Patient" and isinstance(birth, str) and len(birth) == 10:
        year = int(birth[:4]) + rng.randint(-15, 15)
        day = min(int(birth[8:]), 28)  # 29 February does not exist in every year
        resource["birthDate"] = f"{year:04d}-{birth[5:7]}-{day:02d}"
    quantity = resource.get("valueQuantity")
    if isinstance(quantity, dict) and quantity.get("code") == "mm":
        value = quantity.get("value")
        if isinstance(value, int | float):
            quantity["value"] = round(value * rng.uniform(0.5, 2.0) * 2) / 2
    return resource


def _filler(
    fixed: list[dict[str, object]], count: int, write: Callable[[dict[str, object]], None]
) -> None:
    """`count` patients without an order: copies of the cohort's history patients, their CTO-PCIs
    attributed to a practitioner outside the export, so only the export grows, not any history."""
    history = [r for r in fixed if _patient(r) is not None]
    owned = {f"{r['resourceType']}/{r['id']}" for r in history if "id" in r}
    patients = [r for r in history if r.get("resourceType") == "Patient"]
    by_patient: dict[str | None, list[dict[str, object]]] = defaultdict(list)
    for resource in history:
        by_patient[_patient(resource)].append(resource)
    for n in range(count):
        source = patients[n % len(patients)]
        suffix = f"-f{n}"
        for resource in by_patient[str(source["id"])]:
            copy = _rename(resource, owned, suffix)
            assert isinstance(copy, dict)
            copy["id"] = f"{copy['id']}{suffix}"
            if "performer" in copy:
                copy["performer"] = [{"actor": {"reference": "Practitioner/filler"}}]
            write(copy)


def generate(patients: int, directory: Path, filler: int = 0, vary: bool = True) -> tuple[int, int]:
    """Write the export; return (patients written, copies of the cohort's cases).

    `filler` adds that many patients without an order (memory tests: a larger export, same work);
    `vary`: copies after the first get their own ages and lengths (`_varied`).
    """
    directory.mkdir(parents=True, exist_ok=True)
    everything = _load()
    case_ids = {
        p for r in everything if r.get("resourceType") == "ServiceRequest" if (p := _patient(r))
    }
    cases = [r for r in everything if _patient(r) in case_ids]
    fixed = [r for r in everything if _patient(r) not in case_ids]
    owned = {f"{r['resourceType']}/{r['id']}" for r in cases if "id" in r}
    files: dict[str, IO[str]] = {}

    def write(resource: dict[str, object]) -> None:
        kind = str(resource["resourceType"])
        if kind not in files:
            files[kind] = (directory / f"{kind}.ndjson").open("w", encoding="utf-8")
        files[kind].write(json.dumps(resource, separators=(",", ":")) + "\n")

    written = sum(1 for r in fixed if r.get("resourceType") == "Patient")
    for resource in fixed:
        write(resource)
    copies = 0
    by_patient: dict[str | None, list[dict[str, object]]] = defaultdict(list)
    for resource in cases:
        by_patient[_patient(resource)].append(resource)
    while written < patients:
        suffix = f"-c{copies}"
        for n, group in enumerate(by_patient.values()):
            if written >= patients:
                break
            rng = random.Random(copies * 1_000_003 + n)
            for resource in group:
                copy = _rename(resource, owned, suffix)
                assert isinstance(copy, dict)
                if "id" in copy:
                    copy["id"] = f"{copy['id']}{suffix}"
                write(_varied(copy, rng) if vary and copies else copy)
            written += 1
        copies += 1
    _filler(fixed, filler, write)
    for handle in files.values():
        handle.close()
    return written + filler, copies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("patients", type=int)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--filler", type=int, default=0, help="extra patients without an order")
    parser.add_argument(
        "--exact-copies",
        action="store_true",
        help="copy the cohort's cases unchanged (every input combination repeats)",
    )
    args = parser.parse_args()
    written, copies = generate(args.patients, args.directory, args.filler, not args.exact_copies)
    print(f"{written} patients ({copies} copies of the cohort's cases) in {args.directory}")


if __name__ == "__main__":
    main()
