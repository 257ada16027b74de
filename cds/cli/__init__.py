"""The `cto-cds` command: `app.py` declares the commands, one module per command group does the work."""

from cds.cli.app import app, main

__all__ = ["app", "main"]
