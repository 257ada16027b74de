"""What a table file may be: a regular file (links followed) of bounded size. Anything else in a
site directory fails the load naming the file: nothing blocks, nothing reads without end, and
nothing is silently left out (the tables would then be the defaults alone)."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

import pytest

from cds.errors import ConfigError
from cds.mapping import tables as tables_module
from cds.mapping.tables import CODE_COLUMNS, DEFAULT_DIR, TABLE_FILES, load_tables

HEADER = ",".join(CODE_COLUMNS)


def load_error(site: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_tables(site)
    return str(info.value)


def test_a_fifo_is_refused_not_waited_on(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "codes.csv")

    def unblock() -> None:  # without the fix the load waits for a writer: give it one, late
        time.sleep(3)
        with contextlib.suppress(OSError):  # ENXIO: no reader waiting, the load did not block
            os.close(os.open(tmp_path / "codes.csv", os.O_WRONLY | os.O_NONBLOCK))

    threading.Thread(target=unblock, daemon=True).start()
    assert load_error(tmp_path) == f"{tmp_path / 'codes.csv'}: is not a regular file (a FIFO)"


@pytest.mark.parametrize("device", ["/dev/null", "/dev/zero"])
def test_a_link_to_a_device_is_refused(tmp_path: Path, device: str) -> None:
    (tmp_path / "codes.csv").symlink_to(device)
    message = load_error(tmp_path)
    assert message == f"{tmp_path / 'codes.csv'}: is not a regular file (a character device)"


def test_a_directory_in_a_files_place_is_refused(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").mkdir()
    assert load_error(tmp_path) == f"{tmp_path / 'rules.yaml'}: is not a regular file (a directory)"


def test_a_file_above_the_limit_is_refused_and_one_at_it_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = max((DEFAULT_DIR / name).stat().st_size for name in TABLE_FILES)  # defaults still load
    monkeypatch.setattr(tables_module, "MAX_TABLE_BYTES", limit)
    text = HEADER + "\n" + "#" * (limit - len(HEADER) - 2) + "\n"
    (tmp_path / "codes.csv").write_text(text)
    assert len(text) == limit
    load_tables(tmp_path)
    (tmp_path / "codes.csv").write_text(text + "\n")
    message = load_error(tmp_path)
    assert (
        message == f"{tmp_path / 'codes.csv'}: larger than the {limit} bytes a table file may hold"
    )


def test_the_shipped_tables_are_far_below_the_limit() -> None:
    for name in TABLE_FILES:
        assert (DEFAULT_DIR / name).stat().st_size < tables_module.MAX_TABLE_BYTES / 50


def test_a_broken_link_is_refused_not_skipped(tmp_path: Path) -> None:
    """A ConfigMap mount is links: a bad one must not leave the tables as the defaults alone."""
    (tmp_path / "codes.csv").symlink_to("/nonexistent/codes.csv")
    message = load_error(tmp_path)
    assert message == f"{tmp_path / 'codes.csv'}: is a broken link (to /nonexistent/codes.csv)"
    with pytest.raises(ConfigError, match="is a broken link"):
        tables_module.tables_version(DEFAULT_DIR, tmp_path)


def test_a_link_loop_is_refused(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").symlink_to(tmp_path / "loop.yaml")
    (tmp_path / "loop.yaml").symlink_to(tmp_path / "rules.yaml")
    assert load_error(tmp_path) == f"{tmp_path / 'rules.yaml'}: is a link loop"
    with pytest.raises(ConfigError, match="is a link loop"):
        tables_module.tables_version(DEFAULT_DIR, tmp_path)


def test_a_link_to_a_regular_file_loads_as_the_file(tmp_path: Path) -> None:
    """The ConfigMap layout: name -> ..data/name -> ..2026_12_07/name."""
    (tmp_path / "..2026_12_07").mkdir()
    (tmp_path / "..2026_12_07" / "rules.yaml").write_text("lm_ramus_as_lad: true\n")
    (tmp_path / "..data").symlink_to("..2026_12_07")
    (tmp_path / "rules.yaml").symlink_to("..data/rules.yaml")
    tables = load_tables(tmp_path)
    assert tables.rules.lm_ramus_as_lad
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "rules.yaml").write_text("lm_ramus_as_lad: true\n")
    assert load_tables(plain).version == tables.version
