"""The CDS Hooks HTTP edge: discovery, service calls, feedback (FastAPI)."""
