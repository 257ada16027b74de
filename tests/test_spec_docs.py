"""docs/spec is the project's own specification: every citation of it resolves, and it agrees with the code.

The code, tests and documents cite the specification three ways: a file (`docs/spec/inputs.md`), a
file and section (`docs/spec/scores.md §1`, `terminology.md §4.6–4.9`, or a markdown link
`[test-servers.md](test-servers.md) §3.1`), and a requirement id (`CH-16`, `SM-08`). Sections are
read from the headings of the spec files (`## 4.`, `### 4.10`), requirement ids from their bold
definitions (`**CH-16**`), so a renumbered heading or a dropped requirement breaks the citations
that depend on it here rather than silently in a reader's hands.

The repository must stand alone: no file may point at the machine it was written on (an absolute
work path) or at the specification's old home outside the repository. The forbidden strings are
assembled at run time so that this file does not contain them.

Finally the clinical tables of scores.md are compared with the score definitions the engine runs:
item ids and points, ranges, band ids and the Operator-CTO band counts. A number changed on one
side only fails here.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from cds.scoring.model import ScoreDefinition
from cds.scoring.scores import SCORES

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "docs" / "spec"
SPEC_FILES = ("scores", "inputs", "cds-hooks-smart", "terminology", "test-servers")
CITING = ("cds", "tests", "docs", "bench", "scripts", "README.md")
# Not sources: caches and environments that may sit inside the working copy.
SKIP_DIRS = {
    ".git",
    ".venv",
    ".venv-fhir",
    "__pycache__",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    ".fhirdata",
    "build",
    "dist",
}
FORBIDDEN = ("shared" + "/spec", "/" + "work/")

_SECTION = r"\d+(?:\.\d+)*"
_FILE_CITE = re.compile(
    r"(?:docs/spec/)?\b(" + "|".join(map(re.escape, SPEC_FILES)) + r")\.md\)?"
    r"((?:(?:,|;|\s+and|\s+or)?\s*§\s*" + _SECTION + r"(?:\s*[–-]\s*" + _SECTION + r")?)*)"
)
_SECTION_REF = re.compile(r"§\s*(" + _SECTION + r")(?:\s*[–-]\s*(" + _SECTION + r"))?")
_HEADING = re.compile(r"^#{2,4}\s+(" + _SECTION + r")\.?\s", re.MULTILINE)
_REQ_DEFINED = re.compile(r"\*\*((?:CH|SM)-\d+)\*\*")
_REQ_CITED = re.compile(r"\b((?:CH|SM)-\d+)\b")
_SPEC_PATH = re.compile(r"docs/spec/([A-Za-z0-9_.-]+)")


def _text(path: Path) -> str | None:
    data = path.read_bytes()
    if b"\0" in data:
        return None
    return data.decode("utf-8", errors="replace")


def _walk(path: Path) -> Iterator[Path]:
    if path.is_file():
        yield path
        return
    for child in sorted(path.iterdir()):
        if child.is_symlink():  # mappings/ and hooks/ link into cds/defaults: read there
            continue
        if child.is_dir():
            if child.name not in SKIP_DIRS and not child.name.endswith(".egg-info"):
                yield from _walk(child)
        elif child.is_file():
            yield child


def _repository_files() -> list[Path]:
    """Tracked and untracked-but-not-ignored files; a plain walk when git is not available."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return list(_walk(ROOT))
    paths = (ROOT / name for name in out.decode().split("\0") if name)
    return [p for p in paths if p.is_file() and not p.is_symlink()]


def _citing_texts() -> Iterator[tuple[Path, str]]:
    for name in CITING:
        for path in _walk(ROOT / name):
            text = _text(path)
            if text is not None:
                yield path, text


def _sections(stem: str) -> set[str]:
    return set(_HEADING.findall((SPEC / f"{stem}.md").read_text()))


def _defined_requirements() -> Counter[str]:
    return Counter(_REQ_DEFINED.findall((SPEC / "cds-hooks-smart.md").read_text()))


def _where(path: Path, text: str, offset: int) -> str:
    return f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, offset) + 1}"


def test_spec_files_exist_with_numbered_sections() -> None:
    for stem in SPEC_FILES:
        assert _sections(stem), f"docs/spec/{stem}.md has no numbered section"
    assert (SPEC / "README.md").is_file()


def test_every_requirement_is_defined_once() -> None:
    expected = {f"CH-{n:02d}" for n in range(1, 28)} | {f"SM-{n:02d}" for n in range(1, 12)}
    defined = _defined_requirements()
    assert set(defined) == expected
    assert [rid for rid, count in defined.items() if count > 1] == []


def test_every_cited_section_exists() -> None:
    sections = {stem: _sections(stem) for stem in SPEC_FILES}
    broken: list[str] = []
    cited = 0
    for path, text in _citing_texts():
        for match in _FILE_CITE.finditer(text):
            for ref in _SECTION_REF.finditer(match.group(2)):
                for number in filter(None, ref.groups()):
                    cited += 1
                    if number.rstrip(".") not in sections[match.group(1)]:
                        broken.append(f"{_where(path, text, match.start())}: {match.group(0)}")
    assert broken == []
    assert cited > 50  # the parser does find the citations


def test_bare_section_references_inside_a_spec_file_exist_in_it() -> None:
    broken: list[str] = []
    for stem in SPEC_FILES:
        path = SPEC / f"{stem}.md"
        text = path.read_text()
        own = _sections(stem)
        # Blank out citations of a named file, so only bare references to this file remain.
        bare = _FILE_CITE.sub(lambda m: " " * len(m.group(0)), text)
        for ref in _SECTION_REF.finditer(bare):
            for number in filter(None, ref.groups()):
                if number.rstrip(".") not in own:
                    broken.append(f"{_where(path, text, ref.start())}: §{number}")
    assert broken == []


def test_every_cited_requirement_id_is_defined() -> None:
    defined = set(_defined_requirements())
    broken = [
        f"{_where(path, text, match.start())}: {match.group(1)}"
        for path, text in _citing_texts()
        for match in _REQ_CITED.finditer(text)
        if match.group(1) not in defined
    ]
    assert broken == []


def test_every_cited_spec_file_exists() -> None:
    broken = [
        f"{_where(path, text, match.start())}: {match.group(0)}"
        for path, text in _citing_texts()
        for match in _SPEC_PATH.finditer(text)
        if not (SPEC / match.group(1).rstrip(".,;:)`'\"")).is_file()
    ]
    assert broken == []


def test_no_file_points_outside_the_repository() -> None:
    found: list[str] = []
    for path in _repository_files():
        text = _text(path)
        if text is None:
            continue
        for needle in FORBIDDEN:
            at = text.find(needle)
            if at >= 0:
                found.append(f"{_where(path, text, at)}: {needle!r}")
    assert found == []


# --- scores.md against the engine's score definitions ------------------------------------------

SECTION_OF = {
    "operator_cto": "1",
    "j_cto": "2",
    "progress_cto": "3",
    "recharge": "4",
    "cl_score": "5",
    "ora": "6",
    "castle": "7",
    "progress_complications": "8",
}
_NUMBER = re.compile(r"^[+−-]?\d+(?:\.\d+)?$")


def _score_section(number: str) -> str:
    text = (SPEC / "scores.md").read_text()
    start = re.search(rf"^## {number}\. ", text, re.MULTILINE)
    assert start is not None, f"scores.md §{number}"
    end = re.search(r"^## ", text[start.end() :], re.MULTILINE)
    return text[start.start() : start.end() + end.start() if end else len(text)]


def _table_rows(section: str, first_header: str) -> list[list[str]]:
    """Cells of the rows of the tables in `section` whose first header cell is `first_header`."""
    rows: list[list[str]] = []
    inside = False
    for line in section.splitlines():
        if not line.startswith("|"):
            inside = False
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if cells[0] == first_header:
            inside = True
        elif inside and not set(cells[0]) <= {"-", ":"}:
            rows.append(cells)
    return rows


def _number(cell: str) -> float:
    return float(cell.replace("−", "-").lstrip("+"))


@pytest.mark.parametrize("score", SCORES, ids=lambda s: s.id)
def test_scores_md_items_match_the_engine(score: ScoreDefinition) -> None:
    rows = _table_rows(_score_section(SECTION_OF[score.id]), "item id")
    documented = {row[0].strip("`"): _number(row[1]) for row in rows if _NUMBER.match(row[1])}
    assert documented == {item.id: float(item.points) for item in score.items}


@pytest.mark.parametrize("score", SCORES, ids=lambda s: s.id)
def test_scores_md_range_and_bands_match_the_engine(score: ScoreDefinition) -> None:
    section = _score_section(SECTION_OF[score.id])
    found = re.search(r"\*\*Range\*\* ([−-]?\d+(?:\.\d+)?) *[…–] *\+?(\d+(?:\.\d+)?)", section)
    assert found is not None
    assert (_number(found.group(1)), _number(found.group(2))) == score.points_range
    for band in score.bands:
        assert f"`{band.id}`" in section


def test_scores_md_operator_cto_counts_match_the_engine() -> None:
    (score,) = (s for s in SCORES if s.id == "operator_cto")
    rows = _table_rows(_score_section("1"), "band id")
    documented = []
    for row in rows:
        counts = re.match(r"(\d+) / (\d+) = ([\d.]+) %", row[2])
        assert counts is not None, row
        successes, n, percent = int(counts[1]), int(counts[2]), float(counts[3])
        assert round(100 * successes / n, 1) == percent
        documented.append((row[0].strip("`"), successes, n))
    engine = [
        (band.id, band.estimate.successes, band.estimate.n)
        for band in score.bands
        if band.estimate is not None
    ]
    assert documented == engine


def test_scores_md_cites_the_paper_the_engine_links() -> None:
    (score,) = (s for s in SCORES if s.id == "operator_cto")
    assert score.url is not None
    doi = score.url.removeprefix("https://doi.org/")
    assert f"doi:[{doi}]" in _score_section("1")
