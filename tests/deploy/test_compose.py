"""deploy/compose.yaml: valid against the Compose Specification schema (vendored in tests/data), and
wired as intended: healthchecks, start order, real settings, real CLI commands, pinned images."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy.support import DEPLOY, ROOT, parse_cli, unknown_settings

COMPOSE = DEPLOY / "compose.yaml"
SCHEMA = json.loads((ROOT / "tests/data/compose-spec/compose-spec.json").read_text("utf-8"))
ONE_SHOT = {"fhir-load", "migrate"}
LONG_RUNNING = {"db", "fhir", "cds", "smart-as"}
BUILT_IMAGE = "cto-cds:local"
PINNED = re.compile(r"^[\w./-]+:[\w.-]*\d[\w.-]*@sha256:[0-9a-f]{64}$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text("utf-8"))  # merges `<<:` anchors
    return doc


def _services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = compose["services"]
    return services


def _errors(doc: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft201909Validator(SCHEMA)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(doc)]


def test_the_file_validates_against_the_compose_specification(compose: dict[str, Any]) -> None:
    assert _errors(compose) == []


def test_the_schema_catches_what_compose_would_refuse(compose: dict[str, Any]) -> None:
    # The check has teeth: a misspelt healthcheck key and an unknown condition are errors.
    broken = copy.deepcopy(compose)
    broken["services"]["cds"]["healthcheck"]["intervall"] = "5s"
    broken["services"]["cds"]["depends_on"]["db"]["condition"] = "service_ready"
    errors = _errors(broken)
    assert any("intervall" in e for e in errors), errors
    assert any("service_ready" in e for e in errors), errors


def test_the_stack_has_its_services_one_shot_jobs_never_restart(compose: dict[str, Any]) -> None:
    services = _services(compose)
    assert set(services) == ONE_SHOT | LONG_RUNNING
    for name in ONE_SHOT:
        assert services[name]["restart"] == "no"
        assert "healthcheck" not in services[name]
    for name in LONG_RUNNING:
        assert services[name]["restart"] == "unless-stopped"


@pytest.mark.parametrize("name", sorted(LONG_RUNNING))
def test_every_long_running_service_has_a_healthcheck(compose: dict[str, Any], name: str) -> None:
    check = _services(compose)[name]["healthcheck"]
    assert check["test"][0] == "CMD"
    assert {"interval", "timeout", "retries", "start_period"} <= set(check)


def test_dependencies_wait_for_health_or_completion(compose: dict[str, Any]) -> None:
    services = _services(compose)
    for name, service in services.items():
        for dependency, how in service.get("depends_on", {}).items():
            wanted = (
                "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            )
            assert how == {"condition": wanted}, (name, dependency)
    assert set(services["cds"]["depends_on"]) == {"db", "migrate", "fhir-load"}
    assert set(services["migrate"]["depends_on"]) == {"db"}
    assert set(services["fhir-load"]["depends_on"]) == {"fhir"}


def test_the_cto_cds_services_run_real_commands_with_real_settings(
    compose: dict[str, Any],
) -> None:
    services = _services(compose)
    commands = {name: parse_cli(services[name]["command"]) for name in ("cds", *ONE_SHOT)}
    assert commands["cds"][0] == ["serve"]
    assert commands["migrate"] == (["db", "upgrade"], {})
    chain, load = commands["fhir-load"]
    assert chain == ["demo", "load"]
    env = services["cds"]["environment"]
    # The cohort goes where the service is allowed to read, and the service does not migrate.
    assert load["fhir"] in env["CTO_CDS_ALLOWED_FHIR_SERVERS"].split(",")
    assert env["CTO_CDS_MIGRATE_ON_START"] == "false"
    for name in ("cds", *ONE_SHOT):
        service = services[name]
        assert service["image"] == BUILT_IMAGE
        assert service["build"]["context"] == ".."
        assert unknown_settings(list(service["environment"])) == []
        assert service["environment"]["CTO_CDS_DATABASE_URL"] == env["CTO_CDS_DATABASE_URL"]


def test_the_database_url_names_the_compose_database(compose: dict[str, Any]) -> None:
    services = _services(compose)
    db = services["db"]["environment"]
    url = services["cds"]["environment"]["CTO_CDS_DATABASE_URL"]
    expected = (
        f"postgresql+asyncpg://{db['POSTGRES_USER']}:{db['POSTGRES_PASSWORD']}"
        f"@db:5432/{db['POSTGRES_DB']}"
    )
    assert url == expected


def test_service_healthchecks_probe_the_apps_real_routes(compose: dict[str, Any]) -> None:
    services = _services(compose)
    cds_check = " ".join(services["cds"]["healthcheck"]["test"])
    assert "http://127.0.0.1:8000/readyz" in cds_check
    fhir = services["fhir"]
    assert fhir["healthcheck"]["test"][-1] == "http://127.0.0.1:8080/fhir/metadata"
    # The distroless HAPI image runs the mounted one-file Java check.
    mounted = {v.split(":")[1]: v.split(":")[0] for v in fhir["volumes"]}
    assert fhir["healthcheck"]["test"][-2] in mounted
    assert (DEPLOY / mounted[fhir["healthcheck"]["test"][-2]]).is_file()


def test_images_are_pinned_by_version_tag_and_digest(compose: dict[str, Any]) -> None:
    for name, service in _services(compose).items():
        if service["image"] != BUILT_IMAGE:
            assert PINNED.match(service["image"]), (name, service["image"])


def test_bind_mounts_exist_in_the_repository(compose: dict[str, Any]) -> None:
    for name, service in _services(compose).items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), (name, source)


def test_the_smart_authorization_server_is_demo_only_and_opt_in(compose: dict[str, Any]) -> None:
    service = _services(compose)["smart-as"]
    assert service["profiles"] == ["smart"]
    assert service["labels"]["org.cto-cds.demo-only"] == "true"
    clients = json.loads(service["environment"]["CLIENTS"])
    assert clients[0]["redirect_uris"] == ["http://localhost:8000/app/callback"]
    script = Path(DEPLOY / "../tests/e2e/authserver/smart-as.mjs").read_text("utf-8")
    for variable in ("PORT", "HOST", "ISSUER", "FHIR_BASE", "CLIENTS", "DEFAULT_PATIENT"):
        assert variable in service["environment"]
        assert f"process.env.{variable}" in script
