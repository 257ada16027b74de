"""The hook request: service definitions, the request body, the CTO-PCI order it is about (pure,
except `services.load_services`, which reads hooks/ once at start-up)."""
