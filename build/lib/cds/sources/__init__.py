"""Reading the patient's record: one interface (`RecordSource`), three ways (prefetch, REST, file)."""
