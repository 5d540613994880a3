"""`junction manifests`: every installed system's Kubernetes objects, valid against the Kubernetes schemas
(checked offline: no cluster here), wired the way `junction up --distributed` wires its processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from junction.kubernetes import PORT, Cluster, manifests, to_yaml
from junction.systems import available, load
from tests.conftest import Cli

KUBERNETES = "1.30.0"


def by_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    """The objects of one kind by name."""
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


@pytest.mark.parametrize("name", available())
def test_every_systems_manifests_are_valid_and_complete(name: str) -> None:
    system = load(name)
    objects = list(yaml.safe_load_all(to_yaml(manifests(system))))  # what kubectl would read
    for manifest in objects:
        kubernetes_validate.validate(manifest, KUBERNETES, strict=True)
    processes = [s.name for s in system.services] + ["gateway"]
    deployments, services = by_kind(objects, "Deployment"), by_kind(objects, "Service")
    assert sorted(deployments) == sorted(processes) == sorted(services)
    secret = by_kind(objects, "Secret")[f"{name}-secrets"]
    assert "JUNCTION_DATABASE_URL" in secret["stringData"]  # the database URL is a secret, never in the ConfigMap
    assert ("JUNCTION_RABBITMQ_URL" in secret["stringData"]) == ("rabbitmq" in system.brokers)
    config = by_kind(objects, "ConfigMap")[f"{name}-config"]["data"]
    assert not any("DATABASE" in key or "PASSWORD" in key for key in config)
    for process in processes:
        deployment = deployments[process]
        pod = deployment["spec"]["template"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        assert services[process]["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
        (container,) = pod["spec"]["containers"]
        assert container["args"][:4] == ["serve", name, "--service", process]
        assert {"requests", "limits"} <= container["resources"].keys()
        assert container["readinessProbe"]["httpGet"]["path"] == "/health"
        assert {ref.get("configMapRef", ref.get("secretRef"))["name"] for ref in container["envFrom"]} == {
            f"{name}-config", f"{name}-secrets"}
        if process != "gateway":  # each service is reached where the ConfigMap says, by every other process
            url = config[f"JUNCTION_{process.upper().replace('-', '_')}_URL"]
            assert url == f"http://{process}:{PORT}/{process}"
    assert services["gateway"]["spec"]["ports"][0]["port"] == system.port


def test_grpc_servicers_get_a_port_and_replicas_are_chosen_per_process() -> None:
    objects = manifests(load("shop"), Cluster(image="registry.example/junction:1.0", replicas={"order": 3}))
    deployments, services = by_kind(objects, "Deployment"), by_kind(objects, "Service")
    assert deployments["order"]["spec"]["replicas"] == 3 and deployments["inventory"]["spec"]["replicas"] == 1
    assert {"name": "grpc", "port": 50051, "targetPort": "grpc"} in services["inventory"]["spec"]["ports"]
    assert deployments["order"]["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example/junction:1.0"
    with pytest.raises(ValueError, match="shop has no service nope"):
        manifests(load("shop"), Cluster(replicas={"nope": 2}))


def test_the_command_prints_or_writes_them(cli: Cli, tmp_path: Any) -> None:
    printed = cli("manifests", "social", "--replicas", "recommendation=2")
    assert printed.returncode == 0, printed.stderr
    objects = list(yaml.safe_load_all(printed.stdout))
    assert by_kind(objects, "Deployment")["recommendation"]["spec"]["replicas"] == 2
    written = cli("manifests", "social", "--out", str(tmp_path / "social.yaml"))
    assert written.returncode == 0, written.stderr
    assert list(yaml.safe_load_all((tmp_path / "social.yaml").read_text())) == manifests(load("social"))
    refused = cli("manifests", "social", "--replicas", "user=zero")
    assert refused.returncode != 0 and "SERVICE=N" in refused.stderr + refused.stdout


def test_the_image_runs_junction_as_the_user_the_pods_require() -> None:
    dockerfile = (Path(__file__).resolve().parents[2] / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["junction"]' in dockerfile  # the manifests' args start with `serve`
    pod_user = manifests(load("shop"))[2]["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsUser"]
    assert f"USER {pod_user}" in dockerfile
    assert "uv sync --frozen" in dockerfile  # the locked dependencies, as tested
