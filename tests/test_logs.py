"""JSON log lines, exceptions without their values, and the configuration `cto-cds serve` uses."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cds.errors import ConfigError
from cds.logs import JsonFormatter, exception_fields, log_config
from cds.main import create_app
from cds.settings import load_settings
from tests.integration.service_harness import BASE, TRUSTED, settings

SECRET = "Doe^Jane 1961-05-20 pt01"


def _record(exc: BaseException | None = None) -> logging.LogRecord:
    info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    record = logging.LogRecord("cds.test", logging.ERROR, __file__, 1, "failed %s", ("x",), info)
    record.fields = {"hook": "order-select", "msg": "ignored: the message wins"}
    return record


def _raise() -> None:
    try:
        dict[str, int]()[SECRET]
    except KeyError as exc:
        raise ValueError(SECRET) from exc


def test_a_record_is_one_json_line_with_its_fields() -> None:
    line = JsonFormatter().format(_record())
    assert "\n" not in line
    out = json.loads(line)
    assert out["msg"] == "failed x"
    assert (out["level"], out["logger"], out["hook"]) == ("error", "cds.test", "order-select")
    assert out["ts"].endswith("+00:00")


def test_an_exception_is_its_classes_and_frames_never_its_message() -> None:
    with pytest.raises(ValueError, match="Doe") as caught:
        _raise()
    line = JsonFormatter().format(_record(caught.value))
    assert SECRET not in line
    assert "Doe" not in line
    out = json.loads(line)
    assert out["exc_type"] == "builtins.ValueError"
    assert out["exc_chain"] == ["builtins.KeyError"]
    assert out["stack"][-1].startswith("test_logs.py:")
    assert out["stack"][-1].endswith(" _raise")


def test_frames_are_named_from_their_package() -> None:
    fields = exception_fields(httpx.InvalidURL("no"))
    assert fields["stack"] == []  # never raised: no frames, still a class
    assert fields["exc_type"] == "httpx.InvalidURL"
    try:
        httpx.URL("http://[::1")
    except httpx.InvalidURL as exc:
        fields = exception_fields(exc)
    assert fields["stack"][-1].startswith("httpx/")
    try:
        load_settings(public_base_url="nope")
    except ConfigError as exc:
        fields = exception_fields(exc)
    assert fields["stack"][-1].startswith("cds/settings.py:")


@pytest.fixture
def configured() -> Iterator[io.StringIO]:
    """`log_config()` applied, its handler writing to a buffer; the previous setup restored."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    config = log_config()
    config["handlers"]["stderr"]["stream"] = stream
    logging.config.dictConfig(config)
    try:
        yield stream
    finally:
        for handler in root.handlers[:]:
            if handler not in saved[0]:
                root.removeHandler(handler)
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})


def test_the_serve_configuration_keeps_library_info_lines_out(configured: io.StringIO) -> None:
    logging.getLogger("cds.hook").info("hook call card")
    logging.getLogger("uvicorn.error").info("Started server process")
    # httpx logs every request URL at INFO, a FHIR search names its patient: not written.
    logging.getLogger("httpx").info("HTTP Request: GET https://fhir/Condition?patient=pt01")
    logging.getLogger("httpx").warning("a library warning")
    lines = [json.loads(line) for line in configured.getvalue().splitlines()]
    assert [line["msg"] for line in lines] == [
        "hook call card",
        "Started server process",
        "a library warning",
    ]


def test_the_500_handler_logs_no_exception_text(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings(tmp_path, None), trusted=TRUSTED)

    @app.get("/boom")
    async def boom() -> None:
        _raise()

    import asyncio

    async def call() -> httpx.Response:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
                return await client.get("/boom")

    caplog.set_level(logging.INFO)
    response = asyncio.run(call())
    assert response.status_code == 500
    assert response.json()["issue"][0]["diagnostics"] == "internal error"
    (record,) = [r for r in caplog.records if r.name == "cds.http"]
    assert record.exc_info is None  # no formatter can print the message
    assert record.getMessage() == "unexpected error on GET /boom: ValueError"
    assert record.fields["exc_chain"] == ["builtins.KeyError"]  # type: ignore[attr-defined]
    assert SECRET not in caplog.text
    assert sys.exc_info() == (None, None, None)
