"""What the deploy tests share: the repository's paths, the settings' variable names, and the CLI's
own parser, so a command line in a manifest is checked by the code that will run it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer

from cds.cli import app
from cds.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SETTING_NAMES = frozenset(f"CTO_CDS_{name.upper()}" for name in Settings.model_fields)
MEASURED_RSS_MIB = 143
"""The largest RSS of one worker after 20,000 hook calls in docs/performance.md (`bench/load.py`
reads VmRSS in KiB / 1024): the sizing's starting point."""


def parse_cli(args: Sequence[str]) -> tuple[list[str], dict[str, Any]]:
    """`cto-cds ARGS` parsed (not run) by the real command: (sub-command chain, its parameters).

    A misspelt command or option raises the CLI's own usage error."""
    command = typer.main.get_command(app)
    ctx = command.make_context("cto-cds", list(args))
    chain: list[str] = []
    while hasattr(command, "resolve_command"):
        name, sub, rest = command.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
        assert name is not None
        assert sub is not None
        chain.append(name)
        command = sub
        ctx = command.make_context(name, rest, parent=ctx)
    return chain, dict(ctx.params)


def unknown_settings(names: Sequence[str]) -> list[str]:
    """The `CTO_CDS_*` names among `names` that no setting reads (a typo is silently ignored)."""
    return sorted(n for n in names if n.startswith("CTO_CDS_") and n not in SETTING_NAMES)
