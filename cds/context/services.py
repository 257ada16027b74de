"""CDS service definitions from `hooks/*.yaml` (CH-04, CH-10): discovery is generated from them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from cds.defaults import HOOKS_DIR
from cds.errors import ConfigError

# CDS Hooks 2.0 prefetch tokens (CH-10): root-level context fields and the user identifiers.
TOKENS = {
    "context.patientId",
    "context.userId",
    "context.encounterId",
    "userPractitionerId",
    "userPractitionerRoleId",
    "userPatientId",
    "userRelatedPersonId",
}
_TOKEN = re.compile(r"\{\{\s*([^}]*?)\s*\}\}")
SEARCH_KEYS = ("patient", "conditions", "procedures", "observations", "reports", "orders")


class ServiceDefinition(BaseModel):
    """One service id under one hook; the wire form is `discovery()`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    hook: Literal["order-select", "order-sign"]
    title: str
    description: str
    prefetch: dict[str, str] = {}

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9\-]{0,62}", value):
            raise ValueError("must be lower-case letters, digits and hyphens")
        return value

    @field_validator("prefetch")
    @classmethod
    def _templates(cls, value: dict[str, str]) -> dict[str, str]:
        for key, template in value.items():
            if key not in SEARCH_KEYS:
                raise ValueError(f"prefetch key {key!r} is not one of {', '.join(SEARCH_KEYS)}")
            for token in _TOKEN.findall(template):
                if token not in TOKENS:
                    raise ValueError(
                        f"prefetch {key}: token {{{{{token}}}}} is not a CDS Hooks 2.0 token"
                    )
            if template.startswith(("/", "http:", "https:")):
                raise ValueError(f"prefetch {key}: must be a relative FHIR query")
        return value

    def discovery(self) -> dict[str, object]:
        out: dict[str, object] = {
            "hook": self.hook,
            "id": self.id,
            "title": self.title,
            "description": self.description,
        }
        if self.prefetch:
            out["prefetch"] = dict(self.prefetch)
        return out


def load_services(directory: Path = HOOKS_DIR) -> list[ServiceDefinition]:
    """Every `*.yaml` in the directory; a bad file is a ConfigError naming file and field."""
    services: list[ServiceDefinition] = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            services.append(ServiceDefinition.model_validate(data))
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not YAML: {exc}") from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(file)"
            raise ConfigError(f"{path}: {where}: {first['msg']}") from None
    seen = set()
    for service in services:
        if (service.id, service.hook) in seen:
            raise ConfigError(
                f"{directory}: service {service.id!r} defined twice for {service.hook}"
            )
        seen.add((service.id, service.hook))
    if not services:
        raise ConfigError(f"{directory}: no service definitions (*.yaml)")
    return services
