"""Structured logs: one JSON object per line, with no patient data (docs/operations.md).

`JsonFormatter` writes `ts`, `level`, `logger`, `msg` and the record's `fields` (`extra={"fields":
{...}}`). An exception is logged as its class and a stack of `file:line function` frames — never
its message, arguments or locals: a database error's message can carry bound values (patient ids),
a KeyError its key. `log_config()` is what `cto-cds serve` hands uvicorn: the service's and
uvicorn's loggers at INFO through this formatter, every other library at WARNING (httpx logs each
request URL — a FHIR search names its patient — at INFO), and no access log (query strings carry
`iss` and `launch`).
"""

from __future__ import annotations

import json
import logging
import traceback
from datetime import UTC, datetime
from pathlib import PurePath
from typing import Any

MAX_FRAMES = 30


def _where(filename: str) -> str:
    """A frame's file from its package on (`cds/http/errors.py`, `starlette/routing.py`)."""
    parts = PurePath(filename).parts
    for anchor in ("site-packages", "dist-packages"):
        if anchor in parts:
            return "/".join(parts[parts.index(anchor) + 1 :])
    if "cds" in parts:
        return "/".join(parts[len(parts) - 1 - parts[::-1].index("cds") :])
    return PurePath(filename).name


def exception_fields(exc: BaseException) -> dict[str, Any]:
    """The exception's class, its causes' classes and the innermost frames, with no values."""
    chain: list[str] = []
    seen: BaseException | None = exc
    while seen is not None and len(chain) < 5:
        chain.append(f"{type(seen).__module__}.{type(seen).__qualname__}")
        seen = seen.__cause__ or seen.__context__
    frames = traceback.extract_tb(exc.__traceback__)[-MAX_FRAMES:]
    stack = [f"{_where(f.filename)}:{f.lineno} {f.name}" for f in frames]
    return {"exc_type": chain[0], "exc_chain": chain[1:], "stack": stack}


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update({k: v for k, v in fields.items() if k not in out})
        if record.exc_info and record.exc_info[1] is not None:
            out.update(exception_fields(record.exc_info[1]))
        return json.dumps(out, ensure_ascii=False, default=str)


def log_config(level: str = "INFO") -> dict[str, Any]:
    """`logging.config.dictConfig` input (and uvicorn's `log_config`): see the module docstring."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": "WARNING", "handlers": ["stderr"]},
        "loggers": {
            "cds": {"level": level},
            # propagate explicitly: uvicorn's own default config (an embedded uvicorn.Config
            # elsewhere in the process) turns it off, and dictConfig keeps what it is not told.
            "uvicorn": {"level": level, "propagate": True},
            "uvicorn.error": {"level": level, "propagate": True},
            "uvicorn.access": {"level": "WARNING", "propagate": True},
        },
    }
