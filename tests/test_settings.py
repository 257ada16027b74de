"""Settings enforce their own rules: production checks, typed environment, URLs, body limit."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet
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


ONE_CLIENT = "- iss: https://ehr.example.org\n  jwks_url: https://ehr.example.org/jwks\n"


def production(tmp_path: Path, trust: str = ONE_CLIENT, **values: object) -> Settings:
    path = tmp_path / "trusted.yaml"
    path.write_text(trust, "utf-8")
    settings: dict[str, object] = {
        "environment": "production",
        "public_base_url": "https://cds.example.org",
        "app_context_secret": "p" * 32,
        "trusted_clients": path,
    }
    return load_settings(**(settings | values))


def test_production_accepts_a_long_secret_and_a_trust_list_naming_a_client(tmp_path: Path) -> None:
    assert production(tmp_path).environment == "production"


@pytest.mark.parametrize("trust", ["[]", "[]\n# nobody yet\n"])
def test_production_refuses_a_trust_file_that_lists_no_client(tmp_path: Path, trust: str) -> None:
    # Only the variable was checked: a file holding [] started a service refusing every call.
    with pytest.raises(ConfigError, match=r"CTO_CDS_TRUSTED_CLIENTS: .* lists no client"):
        production(tmp_path, trust)


@pytest.mark.parametrize("secret", ["", "   ", "a", "x" * 31, " " * 40, " " + "y" * 30 + " "])
def test_production_refuses_a_short_or_blank_app_context_secret(
    tmp_path: Path, secret: str
) -> None:
    with pytest.raises(ConfigError, match="CTO_CDS_APP_CONTEXT_SECRET: must be at least 32"):
        production(tmp_path, app_context_secret=secret)


@pytest.mark.parametrize("key", ["foo", "", "é" * 44, "A" * 42 + "=="])
def test_a_token_key_that_is_not_a_fernet_key_is_refused_without_showing_it(key: str) -> None:
    # Fernet's ValueError was a traceback when the app built its vault.
    with pytest.raises(ConfigError, match=r"CTO_CDS_SMART_TOKEN_KEY: .*not a Fernet key") as no:
        load_settings(smart_token_key=key)
    assert not key or key not in str(no.value)


def test_a_fernet_key_is_accepted() -> None:
    key = Fernet.generate_key().decode()
    assert load_settings(smart_token_key=key).smart_token_key.get_secret_value() == key  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("env", "shown"),
    [
        ({"public_base_url": "https://user:pw123secret@h"}, "'https://***@h' has user-info"),
        ({"allowed_fhir_servers": "https://u:pw123secret@h/fhir"}, "'https://***@h/fhir' has user"),
        ({"cors_origins": "https://u:pw123secret@h"}, "'https://***@h' has user-info"),
        ({"public_base_url": "https://h/?token=pw123secret"}, "'https://h/?***' has a query"),
        (
            {"database_url": "mysql://u:pw123secret@SECRET@db/cds"},
            "mysql://***@db/cds is not supported",
        ),
    ],
)
def test_a_refused_url_is_repeated_without_user_info_or_query(
    env: dict[str, str], shown: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(**env)
    assert shown in str(refused.value)
    assert "pw123secret" not in str(refused.value)
    assert "SECRET" not in str(refused.value)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"fhir_deadline": "abc"},
            "CTO_CDS_FHIR_DEADLINE: Input should be a valid number, unable to parse string as a "
            'number, got "abc"',
        ),
        ({"fhir_deadline": "0"}, 'CTO_CDS_FHIR_DEADLINE: Input should be greater than 0, got "0"'),
        (
            {"migrate_on_start": "maybe"},
            "CTO_CDS_MIGRATE_ON_START: Input should be a valid boolean, unable to interpret input, "
            'got "maybe"',
        ),
        (
            {"cors_origins": "*"},
            "CTO_CDS_CORS_ORIGINS: '*' must be an absolute http(s) URL",
        ),
    ],
)
def test_a_bad_value_is_named_with_the_value_given(env: dict[str, str], message: str) -> None:
    # The value was not said, and our own checks' messages began with pydantic's "Value error, ".
    with pytest.raises(ConfigError) as refused:
        load_settings(**env)
    assert str(refused.value) == message


@pytest.mark.parametrize(
    "env",
    [
        {"metrics_token": "short-secret"},
        {"smart_token_key": "short-secret"},
        {"smart_private_key": ["short-secret"]},
        {"app_context_secret": ["short-secret"]},
    ],
)
def test_a_secret_setting_is_named_never_shown(env: dict[str, object]) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(**env)
    assert str(refused.value).startswith(f"CTO_CDS_{next(iter(env)).upper()}: ")
    assert "short-secret" not in str(refused.value)


@pytest.mark.parametrize("name", ["mappings_dir", "trusted_clients"])
@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_path_is_refused_not_taken_as_the_current_directory(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=rf"^CTO_CDS_{name.upper()}: is empty"):
        load_settings(**{name: value})


def test_a_short_secret_is_refused_without_its_length() -> None:
    # pydantic says "…at least 16 items after validation, not 12": the length of the secret.
    with pytest.raises(ConfigError) as refused:
        load_settings(metrics_token="short-secret")
    assert str(refused.value) == "CTO_CDS_METRICS_TOKEN: too short: at least 16 characters"
