"""Local validation of the scores on a site's own cases (`cto-cds validate`).

`cohort` reads the registry CSV, `analysis` scores every lesion and gathers per-score results,
`stats` holds the statistics (pure), `report_text`/`report_html` present them.
"""
