"""deploy/k8s: every manifest validates against the official Kubernetes schemas (kubernetes-validate,
offline, strict: unknown fields are errors), and the pieces fit: kustomization, probes on the app's
real routes, security context, sizing, Secrets by reference, settings that exist, CLI commands."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from fastapi.testclient import TestClient

from cds.main import create_app
from cds.settings import Settings
from cds.store.engine import connection_budget
from tests.deploy.support import K8S, MEASURED_RSS_MIB, parse_cli, unknown_settings

Manifest = dict[str, Any]
# The oldest Kubernetes still in upstream support when this was written, and the newest schemas shipped.
VERSIONS = ("1.32", kubernetes_validate.utils.latest_version())
MIB = {"Mi": 1, "Gi": 1024}


def _files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


def _load(path: Path) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(path.read_text("utf-8")) if doc]


MANIFESTS = [doc for path in _files() for doc in _load(path)]


def _one(kind: str, name: str | None = None) -> Manifest:
    found = [m for m in MANIFESTS if m["kind"] == kind and name in (None, m["metadata"]["name"])]
    assert len(found) == 1, (kind, name, len(found))
    return found[0]


def _pod(workload: Manifest) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def _mib(quantity: str) -> float:
    return float(quantity[:-2]) * MIB[quantity[-2:]]


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


DEPLOYMENT = _one("Deployment")
JOB = _one("Job")
SETTINGS = _one("ConfigMap", "cto-cds-settings")["data"]
CONTAINER = _pod(DEPLOYMENT)["containers"][0]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("path", _files(), ids=lambda p: p.name)
def test_every_manifest_validates_against_the_kubernetes_schema(path: Path, version: str) -> None:
    for manifest in _load(path):
        kubernetes_validate.validate(manifest, version, strict=True)


def test_the_validation_has_teeth() -> None:
    broken = copy.deepcopy(DEPLOYMENT)
    broken["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]["httpGet"]["paht"] = "/"
    with pytest.raises(kubernetes_validate.ValidationError, match="paht"):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)
    broken = copy.deepcopy(DEPLOYMENT)
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[-1], strict=True)


def test_the_kustomization_lists_every_manifest_and_nothing_else() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text("utf-8"))
    assert kustomization["kind"] == "Kustomization"
    assert sorted(kustomization["resources"]) == [p.name for p in _files()]
    assert [i["name"] for i in kustomization["images"]] == [CONTAINER["image"]]
    assert JOB["spec"]["template"]["spec"]["containers"][0]["image"] == CONTAINER["image"]


def test_no_secret_values_only_references() -> None:
    assert not [m for m in MANIFESTS if m["kind"] == "Secret"]
    refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"]["name"]
        for e in CONTAINER["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert set(refs) == {
        "CTO_CDS_DATABASE_URL",
        "CTO_CDS_APP_CONTEXT_SECRET",
        "CTO_CDS_SMART_TOKEN_KEY",
        "CTO_CDS_METRICS_TOKEN",
    }
    assert not {e["name"] for e in CONTAINER["env"] if "value" in e}
    # The trusted clients' keys: a Secret mounted where CTO_CDS_TRUSTED_CLIENTS points.
    volumes = {v["name"]: v for v in _pod(DEPLOYMENT)["volumes"]}
    mount = next(m for m in CONTAINER["volumeMounts"] if m["name"] == "trusted-clients")
    secret = volumes["trusted-clients"]["secret"]
    (item,) = secret["items"]
    assert SETTINGS["CTO_CDS_TRUSTED_CLIENTS"] == f"{mount['mountPath']}/{item['path']}"


def test_env_names_are_settings_and_the_settings_pass_production_rules(tmp_path: Path) -> None:
    names = list(SETTINGS) + [e["name"] for e in CONTAINER["env"]]
    names += [e["name"] for e in _pod(JOB)["containers"][0]["env"]]
    assert unknown_settings(names) == []
    assert SETTINGS["CTO_CDS_MIGRATE_ON_START"] == "false"
    trusted = tmp_path / "trusted.yaml"
    trusted.write_text(
        "- iss: https://ehr.example.org\n  jwks_url: https://ehr.example.org/jwks\n", "utf-8"
    )
    mappings = tmp_path / "mappings"
    mappings.mkdir()
    values = {k.removeprefix("CTO_CDS_").lower(): v for k, v in SETTINGS.items()}
    values |= {"trusted_clients": trusted, "mappings_dir": mappings}
    settings = Settings(**values, app_context_secret="k8s-test-secret-0123456789abcdef")
    assert settings.environment == "production"
    assert settings.migrate_on_start is False


def test_the_mappings_configmap_is_mounted_where_the_setting_points() -> None:
    volumes = {v["name"]: v for v in _pod(DEPLOYMENT)["volumes"]}
    mount = next(m for m in CONTAINER["volumeMounts"] if m["name"] == "mappings")
    assert mount["mountPath"] == SETTINGS["CTO_CDS_MAPPINGS_DIR"]
    assert mount["readOnly"]
    assert (
        volumes["mappings"]["configMap"]["name"]
        == _one("ConfigMap", "cto-cds-mappings")["metadata"]["name"]
    )


def test_probes_point_at_the_apps_real_routes_on_the_served_port(tmp_path: Path) -> None:
    assert CONTAINER["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert CONTAINER["readinessProbe"]["httpGet"]["path"] == "/readyz"
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'cds.db'}")
    with TestClient(create_app(settings)) as client:  # the real app, its lifespan run
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            get = CONTAINER[probe]["httpGet"]
            assert client.get(get["path"]).status_code == 200, (probe, get["path"])
            (port,) = [p for p in CONTAINER["ports"] if p["name"] == get["port"]]
            assert port["containerPort"] == 8000
        assert client.get("/no-such-probe").status_code == 404  # a wrong path would show
    chain, params = parse_cli(CONTAINER["args"])
    assert chain == ["serve"]
    assert params == {"host": "0.0.0.0", "port": 8000, "workers": 1}  # one worker per pod


def test_replicas_and_sizing_follow_the_measured_memory() -> None:
    assert DEPLOYMENT["spec"]["replicas"] >= 2
    resources = CONTAINER["resources"]
    request, limit = _mib(resources["requests"]["memory"]), _mib(resources["limits"]["memory"])
    # The request covers a worker's measured RSS with headroom; the limit leaves room for bursts.
    assert MEASURED_RSS_MIB * 1.25 <= request < limit
    assert limit >= 2 * MEASURED_RSS_MIB
    assert {"cpu", "memory"} <= set(resources["requests"]) & set(resources["limits"])


@pytest.mark.parametrize("workload", [DEPLOYMENT, JOB], ids=["deployment", "job"])
def test_workloads_are_hardened(workload: Manifest) -> None:
    pod = _pod(workload)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # the Dockerfile's USER
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"] == {"drop": ["ALL"]}
        # A read-only root: a writable /tmp for what uses Python's tempfile (deploy/README.md).
        tmp = next(m for m in container["volumeMounts"] if m["mountPath"] == "/tmp")
        (volume,) = [v for v in pod["volumes"] if v["name"] == tmp["name"]]
        assert "emptyDir" in volume


def test_a_pod_waits_before_stopping_and_its_calls_fit_the_grace_period() -> None:
    """preStop sleeps while the endpoints drop the pod (tests/integration/test_graceful_shutdown.py:
    the server refuses new connections from SIGTERM on); what is left of the grace period holds a
    call that waits its whole FHIR deadline, and a last attempt of the audit queue."""
    pod = _pod(DEPLOYMENT)
    wait = CONTAINER["lifecycle"]["preStop"]["sleep"]["seconds"]
    settings = _one("ConfigMap", "cto-cds-settings")["data"]
    deadline = float(
        settings.get("CTO_CDS_FHIR_DEADLINE", Settings.model_fields["fhir_deadline"].default)
    )
    assert 3 <= wait <= 10  # longer than endpoint propagation usually takes; not a slow rollout
    assert wait + deadline + 10 <= pod["terminationGracePeriodSeconds"]


def test_the_migration_job_runs_db_upgrade_once() -> None:
    container = _pod(JOB)["containers"][0]
    assert parse_cli(container["args"]) == (["db", "upgrade"], {})
    assert _pod(JOB)["restartPolicy"] in ("OnFailure", "Never")
    assert JOB["spec"]["backoffLimit"] >= 1


def test_service_pdb_hpa_and_network_policy_select_the_right_pods() -> None:
    server = DEPLOYMENT["spec"]["template"]["metadata"]["labels"]
    migrate = JOB["spec"]["template"]["metadata"]["labels"]
    service = _one("Service")
    assert _matches(service["spec"]["selector"], server)
    assert not _matches(service["spec"]["selector"], migrate)  # the Job never gets traffic
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert _matches(_one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"], server)
    hpa = _one("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == DEPLOYMENT["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] >= 2
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    policy = _one("NetworkPolicy")
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert _matches(selector, server)
    assert _matches(selector, migrate)


def test_egress_is_only_dns_the_database_and_the_fhir_side() -> None:
    policy = _one("NetworkPolicy")["spec"]
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    ports = {(p["port"], p["protocol"]) for rule in policy["egress"] for p in rule["ports"]}
    assert ports == {(53, "UDP"), (53, "TCP"), (5432, "TCP"), (443, "TCP")}
    for rule in policy["egress"]:
        assert rule["to"], "an egress rule without `to` allows every destination"
    sources = []
    for ingress in policy["ingress"]:
        assert [p["port"] for p in ingress["ports"]] == [8000]
        (source,) = ingress["from"]
        sources.append(source["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"])
    assert sources == ["ingress-nginx", "monitoring"]  # the EHRs' traffic and Prometheus


def test_prometheus_scrapes_metrics_with_the_token_from_a_secret(tmp_path: Path) -> None:
    annotations = DEPLOYMENT["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    served = {p["containerPort"] for p in CONTAINER["ports"]}
    assert int(annotations["prometheus.io/port"]) in served
    token = next(e for e in CONTAINER["env"] if e["name"] == "CTO_CDS_METRICS_TOKEN")
    assert token["valueFrom"]["secretKeyRef"]["optional"] is True  # unset: /metrics disabled
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'cds.db'}",
        metrics_token="scrape-token-0123456789",
    )
    with TestClient(create_app(settings)) as client:  # the real app serves the annotated path
        path = annotations["prometheus.io/path"]
        assert client.get(path).status_code == 401
        scraped = client.get(path, headers={"Authorization": "Bearer scrape-token-0123456789"})
    assert scraped.status_code == 200
    assert 'cto_cds_http_requests_total{method="GET",route="/metrics",status="401"}' in scraped.text


def test_the_pods_connections_fit_postgresqls_default_limit() -> None:
    """Every pod the autoscaler and a rolling update may run at once, at its connection budget,
    plus the migrate Job, within PostgreSQL's default `max_connections` (100) less the 3 it
    reserves for superusers: past it, new connections (a scaled-out pod's) are refused."""
    pods = _one("HorizontalPodAutoscaler")["spec"]["maxReplicas"]
    pods += DEPLOYMENT["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
    per_pod = int(SETTINGS["CTO_CDS_DATABASE_MAX_CONNECTIONS"])
    assert "--workers" not in CONTAINER.get("args", [])  # one process per pod
    assert pods * per_pod + 1 <= 100 - 3
    assert sum(connection_budget(per_pod)) == per_pod
