"""deploy/kubernetes: no cluster here, so the manifests are checked as data against the Kubernetes
API schemas and against the gateway itself (its settings, its drain, its probes, its catalog)."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

import kubernetes_validate
import pytest
import yaml

from gateway.catalog import load_catalog, load_config
from gateway.policy import load_policy_dir
from gateway.settings import Settings

from .conftest import KUSTOMIZE, ROOT, Kustomization, image_tag, option, pinned
from tests import loopback

#: The oldest Kubernetes these manifests promise to work on, and the newest schema bundled.
K8S_VERSIONS = ["1.28.0", kubernetes_validate.latest_version()]
SECRET_NAME = re.compile(r"(KEY|SECRET|TOKEN|PASSWORD|CREDENTIALS)$|^GATEWAY_REDIS_URL$")


def _env(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def _literal_env(container: dict) -> dict[str, str]:
    return {name: e["value"] for name, e in _env(container).items() if "value" in e}


def _port(container: dict, ref: int | str) -> int:
    if isinstance(ref, int):
        return ref
    matches = [p["containerPort"] for p in container["ports"] if p.get("name") == ref]
    assert matches, f"no container port named {ref!r}"
    return matches[0]


def test_every_resource_is_valid_against_the_api_schema(kustomization: Kustomization) -> None:
    kinds = sorted(r["kind"] for r in kustomization.resources)
    assert kinds == ["Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service"]
    for resource in kustomization.resources:
        for version in K8S_VERSIONS:
            # strict: a misspelt field (readinesProbe) is an error, not silently ignored.
            kubernetes_validate.validate(resource, version, strict=True)


def test_a_misspelt_field_fails_the_schema_check(deployment: dict) -> None:
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    probe = broken["spec"]["template"]["spec"]["containers"][0].pop("readinessProbe")
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = probe
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[-1], strict=True)


def test_probes_use_the_gateway_health_paths_on_the_serving_port(container: dict, recipe) -> None:
    port = int(option(container["args"], "--port"))
    assert option(container["args"], "--host") == "0.0.0.0"
    assert port in recipe.expose and option(recipe.cmd, "--port") == str(port)
    probes = {kind: container[kind]["httpGet"] for kind in ("readinessProbe", "livenessProbe", "startupProbe")}
    assert probes["readinessProbe"]["path"] == "/readyz"
    assert probes["livenessProbe"]["path"] == "/healthz"
    assert probes["startupProbe"]["path"] == "/healthz"  # liveness must not kill a pod still importing
    for kind, probe in probes.items():
        assert _port(container, probe["port"]) == port, kind


def test_prestop_and_drain_fit_inside_the_termination_grace(deployment: dict, container: dict) -> None:
    pod = deployment["spec"]["template"]["spec"]
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep" and len(command) == 2
    pre_stop_s = float(command[1])
    # The drain is the gateway's own setting, read the way the process reads it.
    drain_s = Settings(shutdown_grace_s=_literal_env(container)["GATEWAY_SHUTDOWN_GRACE_S"]).shutdown_grace_s
    assert pre_stop_s >= 5, "endpoint removal needs a few seconds to reach every node"
    assert drain_s > 0
    # Kubernetes counts preStop inside terminationGracePeriodSeconds, then SIGKILLs: leave room for
    # the drain and the stats flush after it.
    assert pod["terminationGracePeriodSeconds"] > pre_stop_s + drain_s
    assert pod["terminationGracePeriodSeconds"] >= pre_stop_s + drain_s + 5


def test_one_worker_per_pod(container: dict) -> None:
    assert _literal_env(container)["GATEWAY_WORKERS"] == "1"
    assert option(container["args"], "--workers") in (None, "1")


def test_every_gateway_variable_is_a_setting(container: dict) -> None:
    fields = set(Settings.model_fields)
    for name in _env(container):
        if name.startswith("GATEWAY_"):
            assert name.removeprefix("GATEWAY_").lower() in fields, f"{name} is not a gateway setting"
    Settings(**{k.removeprefix("GATEWAY_").lower(): v for k, v in _literal_env(container).items()
                if k.startswith("GATEWAY_")})


def test_resources_requested_and_memory_limited(container: dict) -> None:
    resources = container["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"])
    assert "memory" in resources["limits"]


def test_runs_as_the_image_user_on_a_read_only_root(deployment: dict, container: dict, recipe) -> None:
    pod_security = deployment["spec"]["template"]["spec"]["securityContext"]
    assert pod_security["runAsNonRoot"] is True
    uid = recipe.user.split(":")[0]
    assert uid.isdigit(), "runAsNonRoot needs a numeric USER in the image"
    assert pod_security["runAsUser"] == int(uid)
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert "/tmp" in mounts  # the only place the gateway writes


def test_hpa_scales_the_deployment(kustomization: Kustomization, deployment: dict) -> None:
    hpa = kustomization.one("HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                     "name": deployment["metadata"]["name"]}
    assert 2 <= hpa["minReplicas"] <= hpa["maxReplicas"]
    assert [m["resource"]["name"] for m in hpa["metrics"]] == ["cpu"]  # needs requests.cpu, set above


def test_service_and_budget_select_the_pods(kustomization: Kustomization, deployment: dict, container: dict) -> None:
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = kustomization.one("Service")["spec"]
    assert service["selector"].items() <= labels.items()
    assert [_port(container, p["targetPort"]) for p in service["ports"]] == [int(option(container["args"], "--port"))]
    pdb = kustomization.one("PodDisruptionBudget")["spec"]
    assert pdb["selector"]["matchLabels"].items() <= labels.items()


def test_keys_come_only_from_secrets(kustomization: Kustomization, container: dict) -> None:
    assert not [r for r in kustomization.resources if r["kind"] == "Secret"], "no Secret is written in the repo"
    assert "secretGenerator" not in kustomization.spec
    for name, entry in _env(container).items():
        if SECRET_NAME.search(name):
            assert set(entry) == {"name", "valueFrom"} and set(entry["valueFrom"]) == {"secretKeyRef"}, name
        else:
            assert not re.match(r"(sk|key)-", str(entry.get("value", ""))), f"{name} looks like a key"
    required = [name for name, e in _env(container).items()
                if "valueFrom" in e and not e["valueFrom"]["secretKeyRef"].get("optional")]
    assert sorted(required) == ["GATEWAY_MASTER_KEY", "GATEWAY_REDIS_URL"]


def test_every_catalog_key_variable_is_filled_from_a_secret(kustomization: Kustomization, container: dict) -> None:
    catalog = yaml.safe_load(kustomization.config_maps["gateway-catalog"]["gateway.yaml"].read_text())
    env = _env(container)
    for deployment in catalog["deployments"]:
        name = deployment["api_key_env"]
        assert name in env and "secretKeyRef" in env[name]["valueFrom"], name


def _mounted_files(kustomization: Kustomization, deployment: dict, container: dict) -> dict[str, str]:
    """Path in the pod -> file in the repo, for every generated ConfigMap the pod mounts."""
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    files = {}
    for mount in container["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "configMap" in volume:
            for key, path in kustomization.config_maps[volume["configMap"]["name"]].items():
                files[str(PurePosixPath(mount["mountPath"]) / key)] = path
    return files


def test_catalog_and_policies_are_mounted_where_the_settings_point(
    kustomization: Kustomization, deployment: dict, container: dict
) -> None:
    files = _mounted_files(kustomization, deployment, container)
    env = _literal_env(container)
    assert env["GATEWAY_CONFIG"] in files
    policies = [pod for pod in files if PurePosixPath(pod).parent == PurePosixPath(env["GATEWAY_POLICIES"])]
    assert [PurePosixPath(p).name for p in policies] == ["default.yaml"]
    catalog = load_catalog(load_config(files[env["GATEWAY_CONFIG"]]), require_keys=False)
    load_policy_dir(KUSTOMIZE / "policies", {d.name: d.info for d in catalog.deployments.values()})


def test_images_pinned_by_tag(kustomization: Kustomization, container: dict) -> None:
    assert pinned(container["image"])
    overrides = {i["name"]: i for i in kustomization.spec.get("images", [])}
    repo = container["image"].rsplit(":", 1)[0]
    assert overrides[repo]["newTag"] == image_tag(container["image"])


def test_a_pod_built_from_the_manifest_serves_its_probes(
    kustomization: Kustomization, deployment: dict, container: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pod's settings, ConfigMap files and Secret-shaped variables, served for real: probes
    answer without a key, everything else needs the master key."""
    from gateway.tools.harness import GatewayThread

    files = _mounted_files(kustomization, deployment, container)
    for name, entry in _env(container).items():
        if "valueFrom" in entry and name != "GATEWAY_REDIS_URL":  # Redis: the in-memory store here
            monkeypatch.setenv(name, f"test-{name.lower()}-0123456789")
    settings = {k.removeprefix("GATEWAY_").lower(): v for k, v in _literal_env(container).items()
                if k.startswith("GATEWAY_")}
    settings["config"] = files[settings["config"]]
    settings["policies"] = KUSTOMIZE / "policies"
    with GatewayThread(Settings(**settings, port=0)) as gw:
        for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
            r = loopback.get(gw.url + container[kind]["httpGet"]["path"], timeout=10)
            assert r.status_code == 200, (kind, r.text)
        assert loopback.get(gw.url + "/v1/models", timeout=10).status_code == 401
        r = loopback.get(gw.url + "/v1/models", timeout=10,
                         headers={"authorization": "Bearer test-gateway_master_key-0123456789"})
        served = {m["id"] for m in r.json()["data"]}
    catalog = yaml.safe_load(settings["config"].read_text())
    assert {d["name"] for d in catalog["deployments"]} <= served  # every provider key was found


def test_configmap_sources_exist() -> None:
    spec = yaml.safe_load((KUSTOMIZE / "kustomization.yaml").read_text())
    for entry in spec["configMapGenerator"]:
        for item in entry["files"]:
            path = KUSTOMIZE / item.rpartition("=")[2]
            assert path.is_file() and path.resolve().is_relative_to(KUSTOMIZE), item
    assert ROOT in KUSTOMIZE.parents
