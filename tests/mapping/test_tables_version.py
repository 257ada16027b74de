"""`MappingTables.version`: the same table files give the same version wherever they are, any
change of content (or a file added or removed) gives another, and files replaced while being read
are an error, not tables labelled with the version of other files."""

from __future__ import annotations

import os
import shutil
from datetime import date
from pathlib import Path

import pytest

from cds.errors import ConfigError
from cds.mapping import tables as tables_module
from cds.mapping.tables import DEFAULT_DIR, TABLE_FILES, VERSION_LENGTH, load_tables

OPERATORS = (
    "npi,practitioner_id,annual_cto_volume,cto_years,last_year_success_rate,as_of,comment\n"
    "1234567893,,70,6,0.95,2026-11-01,\n"
)


def site(tmp_path: Path, name: str, **files: str) -> Path:
    directory = tmp_path / name
    directory.mkdir()
    for file, text in files.items():
        (directory / file.replace("_", ".")).write_text(text, encoding="utf-8")
    return directory


def test_the_version_is_a_short_hex_digest_and_the_defaults_alone_have_one() -> None:
    version = load_tables().version
    assert len(version) == VERSION_LENGTH
    int(version, 16)
    assert load_tables().version == version  # read again: the same


def test_the_same_files_elsewhere_give_the_same_version(tmp_path: Path) -> None:
    first = site(tmp_path, "a", operators_csv=OPERATORS)
    second = site(tmp_path, "b", operators_csv=OPERATORS)
    defaults = tmp_path / "defaults"
    shutil.copytree(DEFAULT_DIR, defaults)
    assert load_tables(first).version == load_tables(second).version
    assert load_tables(first, defaults).version == load_tables(first).version


def test_every_change_of_the_files_changes_the_version(tmp_path: Path) -> None:
    empty = site(tmp_path, "empty")
    versions = {
        "defaults alone": load_tables().version,
        "an empty site directory": load_tables(empty).version,
        "a site registry": load_tables(site(tmp_path, "ops", operators_csv=OPERATORS)).version,
        "the registry with another volume": load_tables(
            site(tmp_path, "ops2", operators_csv=OPERATORS.replace(",70,", ",71,"))
        ).version,
        "the same registry and a comment in rules.yaml": load_tables(
            site(tmp_path, "ops3", operators_csv=OPERATORS, rules_yaml="# reviewed 2026-12\n")
        ).version,
    }
    # A directory without site files reads as the defaults alone: nothing of its own was loaded.
    assert versions["defaults alone"] == versions["an empty site directory"]
    del versions["an empty site directory"]
    assert len(set(versions.values())) == len(versions), versions


def test_a_default_file_changed_changes_the_version(tmp_path: Path) -> None:
    defaults = tmp_path / "defaults"
    shutil.copytree(DEFAULT_DIR, defaults)
    before = load_tables(None, defaults).version
    rules = defaults / "rules.yaml"
    rules.write_text(rules.read_text(encoding="utf-8") + "\n# a new release's default\n")
    assert load_tables(None, defaults).version != before


def test_where_each_file_lies_counts_not_only_its_bytes(tmp_path: Path) -> None:
    """The same bytes as a site's operators.csv and as its codes.csv are not the same tables."""
    as_operators = site(tmp_path, "a", operators_csv="x\n")
    as_codes = site(tmp_path, "b", codes_csv="x\n")
    assert tables_module.tables_version(DEFAULT_DIR, as_operators) != (
        tables_module.tables_version(DEFAULT_DIR, as_codes)
    )
    assert set(TABLE_FILES) == {"codes.csv", "operators.csv", "rules.yaml"}


def test_files_replaced_while_read_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ConfigMap update lands between reading the files and checking them: load again."""
    directory = site(tmp_path, "site", operators_csv=OPERATORS)
    real = tables_module.load_operators

    def replaced_meanwhile(
        path: Path, today: date | None = None
    ) -> list[tables_module.OperatorEntry]:
        entries = real(path, today)
        (directory / "operators.csv").write_text(OPERATORS.replace(",70,", ",90,"))
        return entries

    monkeypatch.setattr(tables_module, "load_operators", replaced_meanwhile)
    with pytest.raises(ConfigError, match="changed while they were read; load again"):
        load_tables(directory)


def test_an_unreadable_file_is_a_config_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection (the suite runs as root, who reads any file): a read that fails."""
    directory = site(tmp_path, "site", operators_csv=OPERATORS)
    real = os.open

    def denied(path: str, flags: int, *args: int) -> int:
        if path == str(directory / "operators.csv"):
            raise PermissionError(13, "Permission denied")
        return real(path, flags, *args)

    monkeypatch.setattr(os, "open", denied)
    with pytest.raises(ConfigError, match=r"operators\.csv: cannot read: Permission denied"):
        load_tables(directory)
