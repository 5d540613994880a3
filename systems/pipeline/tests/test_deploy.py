"""The deployment files, checked offline: Kubernetes manifests against the API's schemas (kubernetes-validate,
strict: no unknown fields), the page's properties of them and of the compose file, and the blue-green
script run against a stand-in ``kubectl`` that records what it is asked."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from pipeline.system import build

DEPLOY = Path(__file__).parent.parent / "deploy"
KUBERNETES = "1.30.0"
SERVICES = {s.name for s in build().services}


def documents(path: Path) -> list[dict[str, Any]]:
    """The YAML documents of a file."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def manifests() -> list[tuple[Path, dict[str, Any]]]:
    """Every Kubernetes object under deploy/k8s, with its file."""
    return [(path, doc) for path in sorted((DEPLOY / "k8s").rglob("*.yaml")) for doc in documents(path)]


def named(kind: str, name: str, where: Path | None = None) -> dict[str, Any]:
    """The one object of ``kind`` called ``name`` (in file ``where`` when given)."""
    found = [d for p, d in manifests() if d["kind"] == kind and d["metadata"]["name"] == name
             and (where is None or p == where)]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


@pytest.mark.parametrize(("path", "doc"), manifests(), ids=lambda v: v.name if isinstance(v, Path) else v["kind"])
def test_every_manifest_is_valid_against_the_kubernetes_schemas(path: Path, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBERNETES, strict=True)


def test_the_user_service_is_the_pages_deployment() -> None:
    deployment = named("Deployment", "user-service")
    assert deployment["spec"]["replicas"] == 3
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["ports"] == [{"containerPort": 8080}]
    assert container["resources"] == {"requests": {"memory": "256Mi", "cpu": "250m"},
                                      "limits": {"memory": "512Mi", "cpu": "500m"}}
    env = {e["name"]: e for e in container["env"]}
    assert env["DATABASE_URL"]["valueFrom"] == {"secretKeyRef": {"name": "db-secret", "key": "url"}}
    assert env["JUNCTION_DATABASE_URL"]["value"] == "$(DATABASE_URL)"  # what the platform reads, from the secret
    assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": 8080}
    assert "url" in named("Secret", "db-secret")["stringData"]


def test_every_part_runs_a_service_of_the_system_with_requests_and_limits() -> None:
    deployments = [d for _, d in manifests() if d["kind"] == "Deployment"]
    served = set()
    for deployment in deployments:
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            assert set(container["resources"]) == {"requests", "limits"}
            for figures in container["resources"].values():
                assert set(figures) == {"memory", "cpu"}
            assert container["args"][0] == "--service"
            served.add(container["args"][1])
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert served == SERVICES | {"gateway"}


def test_the_gateway_reaches_each_service_where_its_kubernetes_service_answers() -> None:
    config = named("ConfigMap", "pipeline-config")["data"]
    for service in SERVICES:
        url = config[f"JUNCTION_{service.upper()}_URL"]
        assert url == f"http://{service}-service:8080/{service}"
        answering = named("Service", f"{service}-service", DEPLOY / "k8s" / f"{service}-service.yaml")
        assert answering["spec"]["ports"][0]["port"] == 8080


def test_the_blue_green_slots_differ_only_in_slot_and_image() -> None:
    blue, green = (named("Deployment", f"user-service-{slot}") for slot in ("blue", "green"))
    assert blue["spec"]["selector"]["matchLabels"] == {"app": "user-service", "slot": "blue"}
    assert green["spec"]["selector"]["matchLabels"] == {"app": "user-service", "slot": "green"}
    assert (blue["spec"]["replicas"], green["spec"]["replicas"]) == (3, 0)
    blue_container, green_container = (d["spec"]["template"]["spec"]["containers"][0] for d in (blue, green))
    assert {**blue_container, "image": None} == {**green_container, "image": None}
    live = named("Service", "user-service", DEPLOY / "k8s" / "blue-green" / "services.yaml")
    preview = named("Service", "user-service-preview")
    assert live["spec"]["selector"] == {"app": "user-service", "slot": "blue"}
    assert preview["spec"]["selector"] == {"app": "user-service", "slot": "green"}


def rollout(tmp_path: Path, failing: str = "") -> tuple[int, list[str]]:
    """Run blue-green.sh against a stand-in kubectl (which fails commands containing ``failing``); the exit
    status and the kubectl commands, one per line."""
    calls = tmp_path / "calls"
    stub = tmp_path / "kubectl"
    stub.write_text(f"""#!/usr/bin/env bash
echo "$*" >> {calls}
if [ -n "{failing}" ] && [[ "$*" == *"{failing}"* ]]; then exit 1; fi
case "$*" in
  *" run "*) echo '{{"status":"healthy","database":"healthy"}}' ;;
  *" get pods "*) echo 0 ;;
esac
""")
    stub.chmod(0o755)
    done = subprocess.run(["bash", str(DEPLOY / "blue-green.sh"), "pipeline:v2", "prod"], capture_output=True,
                          env={**os.environ, "KUBECTL": str(stub), "PAUSE": "0"}, timeout=60, check=False)
    return done.returncode, calls.read_text().splitlines()


def test_the_rollout_deploys_tests_shifts_gradually_and_ends_on_green(tmp_path: Path) -> None:
    status, calls = rollout(tmp_path)
    assert status == 0
    assert all(c.startswith("--namespace prod ") for c in calls)
    steps = [c.removeprefix("--namespace prod ") for c in calls]
    assert "set image deployment/user-service-green user-service=pipeline:v2" in steps
    scales = [s for s in steps if s.startswith("scale")]
    replicas = [(s.split()[2].removeprefix("user-service-"), int(s.split("=")[1])) for s in scales]
    assert replicas == [("green", 1), ("green", 1), ("blue", 2), ("green", 2), ("blue", 1), ("green", 3), ("blue", 0)]
    patches = [s for s in steps if s.startswith("patch")]
    assert '"slot":null' in patches[0] and '"slot":"green"' in patches[-1]
    assert steps.index(next(s for s in steps if s.startswith("run"))) < steps.index(patches[0])  # tested first


def test_a_failing_rollout_puts_traffic_back_on_blue(tmp_path: Path) -> None:
    status, calls = rollout(tmp_path, failing="rollout status")
    assert status == 1
    steps = [c.removeprefix("--namespace prod ") for c in calls]
    assert '"slot":"blue"' in steps[-3]
    assert steps[-2:] == ["scale deployment user-service-blue --replicas=3",
                          "scale deployment user-service-green --replicas=0"]


def test_the_compose_file_is_the_pages_with_every_service() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert compose["version"] == "3.8"
    services = compose["services"]
    assert services["zookeeper"]["environment"]["ZOOKEEPER_CLIENT_PORT"] == 2181
    kafka = services["kafka"]
    assert kafka["ports"] == ["9092:9092"] and kafka["environment"]["KAFKA_BROKER_ID"] == 1
    assert kafka["environment"]["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 1
    postgres = services["postgres"]
    assert postgres["image"] == "postgres:14-alpine" and postgres["ports"] == ["5432:5432"]
    assert postgres["environment"] == {"POSTGRES_USER": "admin", "POSTGRES_PASSWORD": "password",
                                       "POSTGRES_DB": "microservices"}
    assert postgres["volumes"] == ["postgres_data:/var/lib/postgresql/data"] and "postgres_data" in compose["volumes"]
    user = services["user-service"]
    assert user["ports"] == ["8001:8080"]
    assert user["environment"]["DATABASE_URL"] == "postgres://admin:password@postgres:5432/microservices"
    assert user["environment"]["KAFKA_BROKERS"] == "kafka:9092"
    assert services["notification-service"]["ports"] == ["8002:8080"]
    commands = {name: s["command"][1] for name, s in services.items() if s.get("command")}
    assert set(commands.values()) == SERVICES | {"gateway"}
    for name in commands:  # the merged defaults reach every part
        assert services[name]["environment"]["JUNCTION_KAFKA_BOOTSTRAP"] == "kafka:9092"
        assert services[name]["build"]["dockerfile"] == "systems/pipeline/deploy/Dockerfile"
    gateway = services["gateway"]
    assert gateway["ports"] == ["8080:8080"]
    for service in SERVICES:
        assert gateway["environment"][f"JUNCTION_{service.upper()}_URL"] == f"http://{service}-service:8080/{service}"
        assert f"{service}-service" in services


def test_the_image_is_built_in_two_stages_and_serves_on_8080() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert dockerfile.count("\nFROM ") + dockerfile.startswith("FROM ") == 2
    assert "EXPOSE 8080" in dockerfile and 'ENTRYPOINT ["junction", "serve", "pipeline"]' in dockerfile


def test_the_schema_check_is_strict() -> None:
    deployment = named("Deployment", "user-service")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    typo = {**deployment, "spec": {**deployment["spec"], "template": {**deployment["spec"]["template"], "spec": {
        "containers": [{**container, "resource": container["resources"]}]}}}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, KUBERNETES, strict=True)
