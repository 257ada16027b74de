"""Service configuration from `CTO_CDS_*` environment variables (and a `.env` in development).

Validated once at start-up: a misconfiguration fails with a message naming the setting, never at the
first request. Build with `get_settings()`; tests construct `Settings(...)` directly, and the
production rules live in the model itself, so `Settings(environment="production")` cannot skip them.

`environment` is `development` (the default: development secrets allowed, API docs served), `test`
(a shared test deployment) or `production`; outside development the development defaults are
refused and `/docs`, `/redoc` and `/openapi.json` are not served. URLs are parsed by `cds.urls`,
the same rules the service applies to URLs from requests.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from cds.errors import ConfigError, show_value
from cds.store.engine import MAX_CONNECTIONS, database_url
from cds.urls import UrlError, base_url, is_under, masked, parse_url

DEV_SECRET = "dev-only-change-me-0123456789abcdef"
MIN_SECRET_CHARS = 32
"""The shortest appContext secret accepted outside development (`openssl rand -hex 32` gives 64):
it signs the card's app link and derives the token key, so a short one can be guessed offline."""
MIB = 1024 * 1024
Environment = Literal["development", "test", "production"]


def _csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Everything an integration engineer sets; see the README's configuration section."""

    model_config = SettingsConfigDict(env_prefix="CTO_CDS_", env_file=".env", extra="ignore")

    public_base_url: str = "http://127.0.0.1:8000"
    """The external URL EHRs call (behind a proxy: the proxy's URL); JWT `aud` is checked against it."""
    database_url: str = "sqlite+aiosqlite:///./cto-cds.db"
    trusted_clients: Path | None = None
    """YAML/JSON list of `{iss, jwks_url | jwks, jku_allowlist}`: the EHRs allowed to call."""
    allowed_fhir_servers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Base-URL prefixes the service may query (`fhirServer`); anything else is never contacted."""
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    mappings_dir: Path | None = None
    fhir_deadline: float = Field(3.0, gt=0, le=30)
    """Seconds for all FHIR reads of one hook call; after it the card shows what could not be read."""
    app_context_secret: SecretStr = SecretStr(DEV_SECRET)
    app_context_ttl_minutes: int = Field(240, ge=1)
    jwt_leeway_seconds: int = Field(60, ge=0, le=300)
    environment: Environment = "development"
    max_body_bytes: int = Field(5 * MIB, ge=64 * 1024, le=100 * MIB)
    """Largest request body accepted (413 above it, before it is read); a full prefetch is ~100 KB."""
    smart_client_id: str = "cto-cds"
    """The SMART app's client_id registered with each EHR's authorization server (public client)."""
    smart_private_key: SecretStr | None = None
    """PEM (RS384/ES384 key) for `private_key_jwt`: set it and the app is a confidential client."""
    smart_key_id: str | None = None
    """`kid` of that key as registered with the authorization server (its JWKS)."""
    smart_token_key: SecretStr | None = None
    """Fernet key encrypting the app's stored tokens; derived from the appContext secret if unset."""
    app_session_minutes: int = Field(60, ge=1, le=24 * 60)
    """Lifetime of an app session (the cookie and the tokens behind it)."""
    metrics_token: SecretStr | None = Field(None, min_length=16)
    """Bearer token Prometheus must send to read `/metrics`. Unset: `/metrics` is served without
    one in development only, and is disabled (404, with a warning at start-up) elsewhere."""
    migrate_on_start: bool = True
    """Upgrade the database schema at start-up (single node). False when a one-shot job runs
    `cto-cds db upgrade` first (Kubernetes): replicas then only check they may run on the schema."""
    database_max_connections: int = Field(MAX_CONNECTIONS, ge=2, le=1000)
    """The most PostgreSQL connections one process opens (each `serve` worker, each pod): count
    replicas × workers × this against the server's `max_connections` (deploy/README.md)."""

    _split = field_validator("allowed_fhir_servers", "cors_origins", mode="before")(_csv)

    @field_validator("public_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        try:
            return base_url(value)
        except UrlError as exc:
            raise ValueError(f"{masked(value)!r} {exc}") from None

    @field_validator("allowed_fhir_servers")
    @classmethod
    def _prefixes(cls, value: list[str]) -> list[str]:
        checked = []
        for prefix in value:
            try:
                checked.append(base_url(prefix))
            except UrlError as exc:
                raise ValueError(f"{masked(prefix)!r} {exc}") from None
        return checked

    @field_validator("database_url")
    @classmethod
    def _database(cls, value: str) -> str:
        database_url(value)  # ConfigError naming CTO_CDS_DATABASE_URL (password hidden)
        return value

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            try:
                parsed = parse_url(origin)
            except UrlError as exc:
                raise ValueError(f"{masked(origin)!r} {exc}") from None
            if parsed.path:
                raise ValueError(
                    f"{masked(origin)!r} is not an origin (scheme://host[:port], no path)"
                )
        return [origin.rstrip("/") for origin in value]

    @field_validator("smart_token_key")
    @classmethod
    def _fernet_key(cls, value: SecretStr | None) -> SecretStr | None:
        # Checked here, not when the app first builds its vault: a traceback then (never the key).
        if value is not None:
            from cryptography.fernet import Fernet

            try:
                Fernet(value.get_secret_value().encode())
            except ValueError:
                raise ValueError(
                    "not a Fernet key (32 url-safe base64-encoded bytes, from Fernet.generate_key())"
                ) from None
        return value

    @field_validator("trusted_clients", "mappings_dir", mode="before")
    @classmethod
    def _not_empty(cls, value: object) -> object:
        # Path("") is ".": an empty variable silently named the current directory.
        if isinstance(value, str) and not value.strip():
            raise ValueError(
                "is empty (it would mean the current directory): unset it or name a path"
            )
        return value

    @field_validator("trusted_clients", "mappings_dir")
    @classmethod
    def _exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.exists():
            raise ValueError(f"{value} does not exist")
        return value

    @model_validator(mode="after")
    def _production_rules(self) -> Settings:
        self.check_production()
        return self

    def check_production(self) -> None:
        """Refuse development defaults outside development (fail at start-up, naming the variable).

        A ConfigError, not a ValueError, so it leaves `Settings(...)` as itself with its message."""
        if self.environment == "development":
            return
        secret = self.app_context_secret.get_secret_value()
        if secret == DEV_SECRET:
            raise ConfigError("CTO_CDS_APP_CONTEXT_SECRET: set a secret outside development")
        if len(secret.strip()) < MIN_SECRET_CHARS:
            raise ConfigError(
                f"CTO_CDS_APP_CONTEXT_SECRET: must be at least {MIN_SECRET_CHARS} characters "
                "(not counting surrounding whitespace) outside development, e.g. openssl rand -hex 32"
            )
        if not self.public_base_url.startswith("https://"):
            raise ConfigError("CTO_CDS_PUBLIC_BASE_URL: must be https outside development")
        if self.trusted_clients is None:
            raise ConfigError("CTO_CDS_TRUSTED_CLIENTS: no trusted EHR configured")
        # The file, not only the variable: an empty list would refuse every hook call (401).
        from cds.auth.trust import load_trusted_clients  # imported here: yaml and jwt

        if not load_trusted_clients(self.trusted_clients):
            raise ConfigError(
                f"CTO_CDS_TRUSTED_CLIENTS: {self.trusted_clients} lists no client; "
                "outside development every hook call would be refused"
            )

    def fhir_server_allowed(self, url: str) -> bool:
        """True when the base URL `url` is under an allowed base (scheme, host, port and path)."""
        return any(is_under(prefix, url, query=False) for prefix in self.allowed_fhir_servers)


SECRET_SETTINGS = frozenset(
    {"app_context_secret", "smart_private_key", "smart_token_key", "metrics_token", "database_url"}
)
"""Settings whose value no message repeats (the database URL's password: `cds.urls.masked`)."""
URL_SETTINGS = frozenset({"public_base_url", "allowed_fhir_servers", "cors_origins"})


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment; a bad value is a ConfigError naming the variable."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(_message(exc.errors()[0])) from None
    return settings


def _message(error: ErrorDetails) -> str:
    """`CTO_CDS_X: what is wrong, got "value"`: the value said, unless it is a secret or our own
    check already quotes it (masked); pydantic's "Value error, " prefix dropped."""
    field = str(error["loc"][0]) if error["loc"] else None
    name = f"CTO_CDS_{field.upper()}" if field else "CTO_CDS_*"
    message = f"{name}: {error['msg'].removeprefix('Value error, ')}"
    bound = (error.get("ctx") or {}).get("min_length")
    if field in SECRET_SETTINGS and error["type"] in ("too_short", "string_too_short"):
        # pydantic's own words end "not 5": a secret's length is not for a log.
        return f"{name}: too short: at least {bound} characters"
    if field is None or field in SECRET_SETTINGS or error["type"] == "value_error":
        return message
    value = error.get("input")
    if isinstance(value, str) and field in URL_SETTINGS:
        value = masked(value)
    return f"{message}, got {show_value(value)}"


@lru_cache
def get_settings() -> Settings:
    return load_settings()
