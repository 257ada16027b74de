"""The batch output is byte-for-byte what it was before batch scoring was made fast.

`data/cohort_scores.ndjson.gz` is the output of `cto-cds score --ndjson` on the shipped cohort
(cds/demo/cohort.ndjson, 32 CTO-PCI orders, every kind of case the cohort has) with `--today
2026-12-01`, written by the code before operator histories were parsed once per run (commit bc5d021).
Regenerate it only for an intended change of the result contract:

    mkdir /tmp/cohort && cp cds/demo/cohort.ndjson /tmp/cohort/
    cto-cds score --ndjson /tmp/cohort --out /tmp/out.ndjson --today 2026-12-01
    gzip -9 -n -c /tmp/out.ndjson > tests/batch/data/cohort_scores.ndjson.gz
"""

from __future__ import annotations

import gzip
import json
from importlib import resources
from pathlib import Path

from cds.batch import run
from cds.batch.spool import Spool

GOLDEN = Path(__file__).parent / "data" / "cohort_scores.ndjson.gz"


def test_cohort_scores_are_byte_identical_to_the_golden_file(tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    text = resources.files("cds.demo").joinpath("cohort.ndjson").read_text(encoding="utf-8")
    (export / "cohort.ndjson").write_text(text, encoding="utf-8")
    spool = Spool(tmp_path / "spool.sqlite", create=True)
    spool.ingest(export, lambda where, why: None)
    run.init_export_worker(str(spool.path), None, "2026-12-01")
    lines: list[str] = []
    for chunk in run.chunks(spool.iter_order_patients(), 5):  # several chunks share the caches
        result = run.score_patient_chunk(chunk)
        assert result.errors == []
        lines += result.lines
    golden = gzip.decompress(GOLDEN.read_bytes()).decode("utf-8").splitlines(keepends=True)
    assert len(lines) == len(golden) == 32
    for got, want in zip(lines, golden, strict=True):
        if got != want:  # name the order and the first differing key, not 16 kB of JSON
            new, old = json.loads(got), json.loads(want)
            keys = [k for k in old.keys() | new.keys() if old.get(k) != new.get(k)]
            raise AssertionError(f"{old['order']}: differs in {sorted(keys)} (or in key order)")
