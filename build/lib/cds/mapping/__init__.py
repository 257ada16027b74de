"""From the FHIR record to canonical score inputs, through site-editable tables (pure: no I/O here
except `tables.load_tables`, which reads the table files once at start-up)."""
