"""How every `cto-cds` command reports bad input: one line on stderr, exit code 2, no traceback."""

from __future__ import annotations

import re
import sys
from typing import NoReturn

import typer

EXIT_BAD_INPUT = 2
_LINE_BREAKS = re.compile(r"\s*\n\s*")


def fail(message: str) -> NoReturn:
    # One line whatever the cause: YAML, OS and validation messages can span lines.
    print(f"cto-cds: error: {_LINE_BREAKS.sub(' ', message.strip())}", file=sys.stderr)
    raise typer.Exit(EXIT_BAD_INPUT)
