"""Settings enforce their own rules: production checks, typed environment, URLs, body limit."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cds.errors import ConfigError
from cds.main import create_app
from cds.settings import Settings, load_settings


def test_production_rules_hold_for_a_directly_built_settings() -> None:
    # create_app(Settings(...)) used to skip them: only load_settings called check_production.
    with pytest.raises(ConfigError, match="CTO_CDS_APP_CONTEXT_SECRET"):
        create_app(Settings(environment="production"))
    with pytest.raises(ConfigError, match="CTO_CDS_PUBLIC_BASE_URL"):
        Settings(environment="test", app_context_secret="x" * 40)


def test_environment_is_one_of_three_names() -> None:
    with pytest.raises(ValidationError):
        Settings(environment="prod")
    with pytest.raises(ConfigError, match="CTO_CDS_ENVIRONMENT"):
        load_settings(environment="Production")


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"max_body_bytes": "0"}, "CTO_CDS_MAX_BODY_BYTES"),
        ({"public_base_url": "https://cds.example.org/a/../b"}, "CTO_CDS_PUBLIC_BASE_URL"),
        ({"public_base_url": "https://cds.example.org/?x=1"}, "CTO_CDS_PUBLIC_BASE_URL"),
        ({"allowed_fhir_servers": "https://ehr.example.org/r4%2F.."}, "CTO_CDS_ALLOWED_FHIR"),
        ({"cors_origins": "https://sandbox.cds-hooks.org/app"}, "CTO_CDS_CORS_ORIGINS"),
        ({"cors_origins": "*"}, "CTO_CDS_CORS_ORIGINS"),
        ({"database_max_connections": "1"}, "CTO_CDS_DATABASE_MAX_CONNECTIONS"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_settings(**env)


def test_body_limit_default_is_a_few_mebibytes() -> None:
    assert Settings().max_body_bytes == 5 * 1024 * 1024
    assert load_settings(
        allowed_fhir_servers="https://EHR.example.org/r4/"
    ).allowed_fhir_servers == ["https://EHR.example.org/r4"]


def test_an_unsupported_database_url_fails_in_settings_without_the_password() -> None:
    with pytest.raises(ConfigError, match="CTO_CDS_DATABASE_URL") as refused:
        load_settings(database_url="mysql://u:s3cret@db/cds")
    assert "s3cret" not in str(refused.value)
