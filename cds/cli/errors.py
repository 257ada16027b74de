"""How every `cto-cds` command reports bad input: one line on stderr, exit code 2, no traceback."""

from __future__ import annotations

import re
import sys
from typing import NoReturn

import typer

EXIT_BAD_INPUT = 2
_LINE_BREAKS = re.compile(r"\s*\n\s*")
MAX_VALUE = 60
"""Characters of a quoted value kept in an error line; the rest is counted, not printed."""
_LONG_VALUE = re.compile(rf'"((?:[^"\\]|\\.){{{MAX_VALUE + 1},}})"')


def _cut(match: re.Match[str]) -> str:
    value = match.group(1)
    return f'"{value[: MAX_VALUE - 20]}…" ({len(value)} characters)'


def one_line(message: str, source: str | None = None) -> str:
    """The error as one line: line breaks joined, long quoted values cut, `source: ` said once."""
    text = _LONG_VALUE.sub(_cut, _LINE_BREAKS.sub(" ", message.strip()))
    if source and not text.startswith(f"{source}:"):
        text = f"{source}: {text}"
    return text


def fail(message: str, source: str | None = None) -> NoReturn:
    """One line on stderr whatever the cause (YAML, OS and validation messages can span lines)."""
    print(f"cto-cds: error: {one_line(message, source)}", file=sys.stderr)
    raise typer.Exit(EXIT_BAD_INPUT)
