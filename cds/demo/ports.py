"""A free loopback TCP port, for the servers the demo and the tests start (FHIR, CDS service)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port nobody listens on now. Another process may take it before it is bound again: the
    callers start their server straight away, on loopback only."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
