"""The spool: an export's resources by patient and by operator, bad lines reported, not fatal."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import pytest

from cds.batch.spool import Spool, loads

PATIENT = '{"resourceType":"Patient","id":"p1"}'
ORDER = (
    '{"resourceType":"ServiceRequest","id":"o1","status":"active","intent":"order",'
    '"subject":{"reference":"Patient/p1"},"performer":[{"reference":"Practitioner/d1"}]}'
)
HISTORY = (
    '{"resourceType":"Procedure","id":"h1","status":"completed","subject":'
    '{"reference":"https://ehr.example/fhir/Patient/p2"},"performer":[{"actor":'
    '{"reference":"Practitioner/d1"}}]}'
)
DOCTOR = '{"resourceType":"Practitioner","id":"d1"}'


def _spool(tmp_path: Path, files: dict[str, str]) -> tuple[Spool, list[tuple[str, str]]]:
    export = tmp_path / "export"
    export.mkdir()
    for name, text in files.items():
        (export / name).write_text(text)
    errors: list[tuple[str, str]] = []
    spool = Spool(tmp_path / "spool.sqlite", create=True)
    spool.ingest(export, lambda where, why: errors.append((where, why)))
    return spool, errors


def test_resources_are_served_per_patient_and_per_operator(tmp_path: Path) -> None:
    spool, errors = _spool(
        tmp_path,
        {
            "Patient.ndjson": PATIENT + "\n",
            "ServiceRequest.ndjson": ORDER + "\n",
            "Procedure.ndjson": HISTORY + "\n\n",
            "Practitioner.ndjson": DOCTOR + "\n",
            "notes.txt": "not an export file\n",
        },
    )
    assert errors == []
    assert list(spool.iter_order_patients()) == ["p1"]
    assert spool.count_order_patients() == 1
    kinds = sorted(str(r["resourceType"]) for r in spool.patient_resources("p1"))
    assert kinds == ["Patient", "ServiceRequest"]
    history = spool.practitioner_resources("d1", "operator_procedures")
    assert [r["id"] for r in history] == ["h1"]
    assert spool.shared_resource("Practitioner", "d1") == {
        "resourceType": "Practitioner",
        "id": "d1",
    }
    assert spool.shared_resource("Practitioner", "nobody") is None


def test_bad_lines_are_reported_with_file_and_line(tmp_path: Path) -> None:
    odd = HISTORY.replace('"Procedure"', '"Procedure "')
    spool, errors = _spool(
        tmp_path,
        {
            "Patient.ndjson": PATIENT
            + "\n{not json\n"
            + '{"id":"x"}\n'
            + "[1]\n"
            + '{"resourceType":"Patient"}\n',
            "Practitioner.ndjson": "\n".join([DOCTOR, DOCTOR, '{"resourceType":"Device"}', odd])
            + "\n",
        },
    )
    assert errors[0] == (
        "Patient.ndjson:2",
        "not valid JSON (Expecting property name enclosed in double quotes)",
    )
    assert errors[1] == ("Patient.ndjson:3", "not a FHIR resource (no resourceType)")
    assert errors[2] == ("Patient.ndjson:4", "not a FHIR resource (no resourceType)")
    assert errors[3] == ("Patient.ndjson:5", "Patient without id: cannot be found")
    assert (
        "Practitioner.ndjson:3",
        "Device without id and without a patient: cannot be found",
    ) in errors
    assert (
        "Practitioner.ndjson:2",
        "Practitioner/d1: same id as an earlier resource; the first one is kept",
    ) in errors
    assert (
        "Practitioner.ndjson:4",
        "resourceType is not a FHIR type name (a capital, then letters)",
    ) in errors  # it was spooled under that type, so in no patient's procedures
    assert [r["id"] for r in spool.patient_resources("p1")] == ["p1"]


def test_a_lone_surrogate_in_a_type_or_id_is_reported_not_fatal(tmp_path: Path) -> None:
    """UnicodeEncodeError stopped the whole run at the spool's INSERT before."""
    condition = '{"resourceType":"Condition","id":"\\ud800","subject":{"reference":"Patient/p1"}}'
    odd = '{"resourceType":"\\udc00","id":"c2","subject":{"reference":"Patient/p1"}}'
    spool, errors = _spool(
        tmp_path,
        {"Patient.ndjson": PATIENT + "\n", "Condition.ndjson": f"{condition}\n{odd}\n"},
    )
    assert errors == [
        ("Condition.ndjson:1", "Condition.id is not valid Unicode (a lone surrogate escape)"),
        ("Condition.ndjson:2", "resourceType is not valid Unicode (a lone surrogate escape)"),
    ]
    assert [r["id"] for r in spool.patient_resources("p1")] == ["p1"]


def test_an_integer_past_the_digit_limit_is_a_bad_line_not_fatal(tmp_path: Path) -> None:
    """json raises a plain ValueError for it: the whole run stopped with a traceback before."""
    long = '{"resourceType":"Observation","id":"o1","valueInteger":' + "9" * 4301 + "}"
    spool, errors = _spool(tmp_path, {"Patient.ndjson": f"{long}\n{PATIENT}\n"})
    assert errors == [("Patient.ndjson:1", "not valid JSON (an integer of more than 4,300 digits)")]
    assert [r["id"] for r in spool.patient_resources("p1")] == ["p1"]


def test_an_empty_directory_is_reported(tmp_path: Path) -> None:
    _, errors = _spool(tmp_path, {})
    assert len(errors) == 1
    assert "no .ndjson or .jsonl file" in errors[0][1]


def test_a_resource_whose_type_and_id_came_before_is_reported_and_not_spooled(
    tmp_path: Path,
) -> None:
    """A patient's duplicate was spooled twice before: one lesion counted twice, one operator's
    CTO-PCI counted twice in the history."""
    second = HISTORY.replace("completed", "not-done")
    spool, errors = _spool(
        tmp_path,
        {
            "Patient.ndjson": PATIENT + "\n" + HISTORY + "\n",
            "Procedure.ndjson": second + "\n" + HISTORY + "\n",
        },
    )
    kept = "Procedure/h1: same id as an earlier resource; the first one is kept"
    assert errors == [("Procedure.ndjson:1", kept), ("Procedure.ndjson:2", kept)]
    (history,) = spool.practitioner_resources("d1", "operator_procedures")
    assert history["status"] == "completed"
    assert [r["id"] for r in spool.patient_resources("p2")] == ["h1"]


def test_a_version_specific_reference_is_the_same_patient_or_operator(tmp_path: Path) -> None:
    """`Practitioner/d1/_history/2` was no operator before: that CTO-PCI was missing from the
    operator's history (an expert's volume read as 1, success rate 0 %), and an order whose subject
    was `Patient/p1/_history/3` belonged to no patient, so it was never scored."""
    order = ORDER.replace('Patient/p1"', 'Patient/p1/_history/3"')
    history = HISTORY.replace('Practitioner/d1"', 'Practitioner/d1/_history/2"')
    spool, errors = _spool(
        tmp_path, {"Patient.ndjson": f"{PATIENT}\n{order}\n", "Procedure.ndjson": history + "\n"}
    )
    assert errors == []
    assert list(spool.iter_order_patients()) == ["p1"]
    assert [r["id"] for r in spool.practitioner_resources("d1", "operator_procedures")] == ["h1"]
    assert [r["id"] for r in spool.patient_resources("p2")] == ["h1"]


def test_an_export_file_saved_compressed_is_reported_not_skipped_silently(tmp_path: Path) -> None:
    spool, errors = _spool(
        tmp_path,
        {
            "Patient.ndjson": PATIENT + "\n",
            "Procedure.ndjson.gz": "(gzip)",
            "Condition.JSONL.xz": "(xz)",
            "manifest.json.gz": "(not an export file)",
        },
    )
    skipped = "compressed: decompress it to have it read; skipped"
    assert errors == [("Condition.JSONL.xz", skipped), ("Procedure.ndjson.gz", skipped)]
    assert [r["id"] for r in spool.patient_resources("p1")] == ["p1"]


def test_a_byte_that_is_not_utf8_sets_its_line_aside_not_the_rest_of_the_file(
    tmp_path: Path,
) -> None:
    """The rest of the file was skipped before, and the byte named by its offset in the decoder's
    chunk; a CR (JSON whitespace) split a line in two, which shifted every later line number."""
    export = tmp_path / "export"
    export.mkdir()
    second = PATIENT.replace("p1", "p2").replace(",", ",\r ")
    bad = '{"resourceType":"Patient","id":"p\xe9"}'.encode("latin-1")
    lines = [b"\xef\xbb\xbf" + PATIENT.encode(), bad, second.encode(), ORDER.encode()]
    (export / "Patient.ndjson").write_bytes(b"\r\n".join(lines) + b"\r\n")
    errors: list[tuple[str, str]] = []
    spool = Spool(tmp_path / "spool.sqlite", create=True)
    assert spool.ingest(export, lambda where, why: errors.append((where, why))) == 3
    assert errors == [("Patient.ndjson:2", "not UTF-8 text (byte 0xE9)")]
    assert [r["id"] for r in spool.patient_resources("p1")] == ["p1", "o1"]
    assert [r["id"] for r in spool.patient_resources("p2")] == ["p2"]


def test_an_export_file_that_cannot_be_read_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An OSError while reading stopped the run with a traceback; a FIFO, a directory or a broken
    link named like an export file was skipped without a word."""
    export = tmp_path / "export"
    export.mkdir()
    (export / "Patient.ndjson").write_text(PATIENT + "\n")
    (export / "Condition.ndjson").write_text(PATIENT.replace("p1", "p2") + "\n")
    (export / "Observation.ndjson").mkdir()
    (export / "Procedure.ndjson").symlink_to(export / "gone.ndjson")
    os.mkfifo(export / "Encounter.ndjson")
    opened = Path.open

    def failing(path: Path, *args: Any, **kwargs: Any) -> Any:
        if path.name == "Condition.ndjson":
            raise PermissionError(13, "Permission denied")
        return opened(path, *args, **kwargs)

    monkeypatch.setattr(Path, "open", failing)
    errors: list[tuple[str, str]] = []
    spool = Spool(tmp_path / "spool.sqlite", create=True)
    assert spool.ingest(export, lambda where, why: errors.append((where, why))) == 1
    skipped = "not a regular file (a directory, FIFO or broken link); skipped"
    assert errors == [
        ("Encounter.ndjson", skipped),
        ("Observation.ndjson", skipped),
        ("Procedure.ndjson", skipped),
        (
            "Condition.ndjson:1",
            "cannot read the file (Permission denied); the rest of it is skipped",
        ),
    ]
    assert [r["id"] for r in spool.patient_resources("p1")] == ["p1"]


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 9223372036854775807, "b": -9223372036854775808, "c": 18446744073709551615}',
        '{"a": -9223372036854775809}',  # below -2**63: orjson would read a float
        '{"a": 18446744073709551616, "b": 123456789012345678901234567890}',
        '{"a": 0.1000000000000000055511151231257827, "b": 1E5, "c": -0, "d": -0.0}',
        '{"a": NaN, "b": Infinity, "c": -Infinity, "d": 1e400}',  # orjson refuses, json reads
        '{"a": "\\ud800 lone", "b": "\\ud83d\\ude00", "c": "é → \\u2028"}',
        '{"a": 1, "a": 2, "id": "12345678901234567890123"}',  # a long run inside a string
        "[" * 2000 + "]" * 2000,  # deeper than orjson reads
        '{"resourceType": "Observation", "valueQuantity": {"value": 1e-7}}',
    ],
)
def test_loads_reads_what_json_reads(text: str) -> None:
    try:
        expected = repr(json.loads(text))
    except RecursionError:
        with pytest.raises(RecursionError):
            loads(text)
        return
    assert repr(loads(text)) == expected  # repr: 1 and 1.0, nan and nested types differ


def test_loads_reads_floats_as_json_reads_them() -> None:
    rng = random.Random(5)
    for _ in range(20_000):
        digits = f"{rng.getrandbits(rng.randint(1, 70))}"
        text = f"[{digits[:1]}.{digits[1:] or 0}e{rng.randint(-330, 310)}, {rng.random() * 1e6!r}]"
        assert repr(loads(text)) == repr(json.loads(text)), text


def test_a_bad_line_is_reported_as_json_reports_it() -> None:
    with pytest.raises(json.JSONDecodeError) as orjson_path:
        loads('{"a": 1,}')
    with pytest.raises(json.JSONDecodeError) as json_path:
        json.loads('{"a": 1,}')
    assert str(orjson_path.value) == str(json_path.value)
