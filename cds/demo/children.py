"""Stopping the child processes the demo, the tests and the benchmarks start (sekmet, node, cto-cds)."""

from __future__ import annotations

import subprocess


def stop_child(proc: subprocess.Popen[bytes], *, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited after `timeout` s; always reaped (no zombie)."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
