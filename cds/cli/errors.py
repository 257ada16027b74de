"""How every `cto-cds` command reports bad input: one line on stderr, exit code 2, no traceback."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer

EXIT_BAD_INPUT = 2
MAX_VALUE = 60
"""Characters of a quoted value kept in an error line; the rest is counted, not printed."""
MAX_LINE = 2000
"""Characters of a whole error line: a long array or thousands of unknown keys are counted, not
printed (they made multi-megabyte lines)."""


def _cut(value: str) -> str:
    if len(value) <= MAX_VALUE:
        return f'"{value}"'
    return f'"{value[: MAX_VALUE - 20]}…" ({len(value)} characters)'


def _cut_quoted(text: str) -> str:
    """Each long JSON string ("…" with backslash escapes) cut, in one left-to-right pass: a regular
    expression for it took 19 s and 2.7 GB on a 20 MB value, and, starting at a closing quote, took
    the text between two values (field names) for one value."""
    parts: list[str] = []
    done = 0
    while (start := text.find('"', done)) >= 0:
        parts.append(text[done:start])
        at = start + 1
        while True:
            end = text.find('"', at)
            if end < 0:  # never closed: not a JSON string, left as it is
                parts.append(text[start:])
                return "".join(parts)
            before = text[at:end]  # an odd run of backslashes before the quote escapes it
            if (len(before) - len(before.rstrip("\\"))) % 2 == 0:
                break
            at = end + 1
        parts.append(_cut(text[start + 1 : end]))
        done = end + 1
    parts.append(text[done:])
    return "".join(parts)


def _joined(text: str) -> str:
    # Not re.sub(r"\s*\n\s*"): it is quadratic in a run of spaces (90 s for 200,000).
    return " ".join(part for line in text.split("\n") if (part := line.strip()))


def one_line(message: str, source: str | None = None) -> str:
    """The error as one line: line breaks joined, long quoted values cut, `source: ` said once, at
    most `MAX_LINE` characters."""
    text = _joined(_cut_quoted(message.strip()))
    if source and not text.startswith(f"{source}:"):
        text = f"{source}: {text}"
    if len(text) > MAX_LINE:
        kept = MAX_LINE - 40
        text = f"{text[:kept]}… ({len(text) - kept:,} more characters)"
    return text


def fail(message: str, source: str | None = None) -> NoReturn:
    """One line on stderr whatever the cause (YAML, OS and validation messages can span lines)."""
    print(f"cto-cds: error: {one_line(message, source)}", file=sys.stderr)
    raise typer.Exit(EXIT_BAD_INPUT)
