"""`python -m cds` is the `cto-cds` command."""

from cds.cli import main

main()
