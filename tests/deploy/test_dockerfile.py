"""The Dockerfile, read as Docker reads it (instructions, stages), since no Docker engine runs here."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from dataclasses import dataclass

import pytest

from tests.deploy.support import ROOT, parse_cli, unknown_settings

DOCKERFILE = ROOT / "Dockerfile"
PINNED_SLIM = re.compile(r"^python:3\.11\.\d+-slim(-[a-z]+)?@sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def instructions(text: str) -> list[Instruction]:
    """Instructions with line continuations joined and comments dropped."""
    out: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, args = full.partition(" ")
        out.append(Instruction(keyword.upper(), args.strip()))
    return out


ALL = instructions(DOCKERFILE.read_text("utf-8"))
STAGES: list[list[Instruction]] = []
for _instruction in ALL:
    if _instruction.keyword == "FROM":
        STAGES.append([])
    if STAGES:
        STAGES[-1].append(_instruction)
FINAL = STAGES[-1]


def _args(keyword: str, stage: list[Instruction] = FINAL) -> list[str]:
    return [i.args for i in stage if i.keyword == keyword]


def _exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), args
    return [str(v) for v in value]


def _env() -> dict[str, str]:
    env: dict[str, str] = {}
    for args in _args("ENV"):
        for pair in shlex.split(args):
            key, _, value = pair.partition("=")
            env[key] = value
    return env


def test_the_base_image_is_a_pinned_python_slim_for_every_stage() -> None:
    arg = next(i.args for i in ALL if i.keyword == "ARG" and i.args.startswith("PYTHON_IMAGE="))
    assert PINNED_SLIM.match(arg.removeprefix("PYTHON_IMAGE=")), arg
    assert len(STAGES) == 2
    for stage in STAGES:
        assert stage[0].args.split()[0] == "${PYTHON_IMAGE}"


def test_the_final_stage_runs_as_a_numeric_non_root_user() -> None:
    users = _args("USER")
    assert users, "no USER in the final stage"
    uid = users[-1].split(":")[0]
    # Numeric, so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
    assert uid.isdigit()
    assert int(uid) != 0
    last_user = max(i for i, ins in enumerate(FINAL) if ins.keyword == "USER")
    assert all(ins.keyword != "RUN" for ins in FINAL[last_user:]), "RUN after USER runs as the user"


def test_the_healthcheck_probes_healthz_with_python_not_curl() -> None:
    (check,) = _args("HEALTHCHECK")
    options, _, command = check.partition("CMD ")
    assert "--timeout=" in options
    assert "--interval=" in options
    argv = _exec_form(command)
    assert argv[0] == "python"
    assert "curl" not in check
    assert "wget" not in check
    urls = re.findall(r"http://127\.0\.0\.1:(\d+)(/\w+)", argv[-1])
    assert urls == [(_args("EXPOSE")[0], "/healthz")]


def test_the_entry_point_is_cto_cds_serve_on_the_exposed_port() -> None:
    assert _exec_form(_args("ENTRYPOINT")[0]) == ["cto-cds"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["scripts"]
    assert scripts["cto-cds"] == "cds.cli:main"
    chain, params = parse_cli(_exec_form(_args("CMD")[0]))
    assert chain == ["serve"]
    assert params["host"] == "0.0.0.0"
    assert str(params["port"]) == _args("EXPOSE")[0]


def test_settings_come_from_real_variables_and_the_mappings_dir_is_a_volume() -> None:
    env = _env()
    assert unknown_settings(list(env)) == []
    volumes = _exec_form(_args("VOLUME")[0])
    assert env["CTO_CDS_MAPPINGS_DIR"] in volumes
    assert env["CTO_CDS_DATABASE_URL"].startswith("sqlite+aiosqlite:////data/")
    assert "/data" in volumes
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"  # read-only root filesystems


def test_the_bytecode_is_written_at_install_not_at_every_start() -> None:
    """With PYTHONDONTWRITEBYTECODE set, a module without bytecode is compiled at every start
    (≈ 0.6 s of a cold start, docs/performance.md "Cold start"): pip's install must compile."""
    run = " ".join(_args("RUN"))
    assert "pip install" in run
    assert "--no-compile" not in run
    assert "PIP_NO_COMPILE" not in _env()
    assert "PIP_NO_COMPILE" not in " ".join(_args("ARG"))


def test_no_editable_install_no_tests_and_no_compilers_in_the_final_stage() -> None:
    text = " ".join(i.args for i in ALL)
    assert not re.search(r"pip install[^&]*(\s-e\s|--editable)", text)
    for instruction in FINAL:
        if instruction.keyword in ("COPY", "ADD"):
            pytest.fail(f"the final stage copies from the build context: {instruction.args}")
    run = " ".join(_args("RUN"))
    assert "apt-get" not in run
    assert "gcc" not in run
    assert "build-essential" not in run
    assert "--only-binary=:all:" in run  # a dependency without a wheel fails, never compiles
    assert "-c /tmp/constraints.txt" in run
    assert "[postgres]" in run
    copied = " ".join(_args("COPY", STAGES[0]))
    assert "tests" not in copied
    assert " . " not in f" {copied} "


def test_dockerignore_sends_only_what_the_build_copies() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text("utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*"
    included = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert included == {"pyproject.toml", "README.md", "constraints.txt", "cds"}
    for stage in STAGES:
        for args in _args("COPY", stage) + _args("ADD", stage):
            sources = [a for a in args.split()[:-1] if not a.startswith("--")]
            assert {s.rstrip("/").removeprefix("./") for s in sources} <= included, args
