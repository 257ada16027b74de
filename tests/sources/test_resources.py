"""The lean models' `ref`: computed once per resource and kept, never a model field."""

from __future__ import annotations

from cds.sources.resources import Condition, Procedure, parse_resource


def test_ref_is_type_and_id_kept_after_the_first_read() -> None:
    condition = Condition.model_validate({"resourceType": "Condition", "id": "c-1"})
    assert "ref" not in condition.__dict__
    assert condition.ref == "Condition/c-1"
    assert condition.__dict__["ref"] == "Condition/c-1"  # kept: the mapping reads it per order
    assert condition.ref is condition.ref


def test_ref_without_an_id_says_so() -> None:
    assert Procedure.model_validate({"resourceType": "Procedure"}).ref == "Procedure/(no id)"


def test_ref_is_not_a_field_and_does_not_change_equality_or_dumps() -> None:
    raw = {"resourceType": "Condition", "id": "c-2"}
    read, unread = parse_resource(raw), parse_resource(raw)
    assert isinstance(read, Condition)
    assert isinstance(unread, Condition)
    assert read.ref == "Condition/c-2"
    assert "ref" not in Condition.model_fields
    assert read == unread
    assert "ref" not in read.model_dump()
