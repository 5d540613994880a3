"""Kubernetes manifests of a system's distributed topology, made from its definition (``junction manifests``).

One Deployment and one Service per service and one for the gateway, each process ``junction serve <system>
--service <name>`` as `junction up --distributed` runs it on a laptop, configured by the same ``JUNCTION_*``
variables: the shared ones from a ConfigMap (Kafka, where each service answers, the SMTP relay), the
database URL (and RabbitMQ's, with its password) from a Secret. PostgreSQL, Kafka and RabbitMQ are the
cluster's own (``postgres``, ``kafka``, ``rabbitmq`` by default): junction does not run them in a cluster.

Every container has requests and limits, a readiness probe on ``/health`` and a liveness probe, and runs
as a non-root user. The manifests are validated offline against the Kubernetes schemas in the tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from junction.runtime import System

PORT = 8000  # every service process's HTTP port inside its pod
DATA = "/var/lib/junction"  # the data directory: keys, the clock origin (an emptyDir; see docs/kubernetes.md)


@dataclass(frozen=True)
class Resources:
    """What one container asks for and may use at most."""

    cpu: str = "100m"
    memory: str = "192Mi"
    cpu_limit: str = "1"
    memory_limit: str = "512Mi"

    def spec(self) -> dict[str, Any]:
        """The container's ``resources``."""
        return {"requests": {"cpu": self.cpu, "memory": self.memory},
                "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit}}


@dataclass(frozen=True)
class Cluster:
    """Where the system's servers are in the cluster, and how its processes are sized."""

    image: str = "junction:latest"
    database_url: str = "postgresql://junction:change-me@postgres:5432/postgres"
    kafka_bootstrap: str = "kafka:9092"
    rabbitmq_url: str = "amqp://junction:change-me@rabbitmq:5672/"
    smtp_host: str = "smtp"
    replicas: Mapping[str, int] = field(default_factory=dict)  # per service (or "gateway"); 1 otherwise
    resources: Resources = field(default_factory=Resources)


def _labels(system: System, name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": system.name,
            "app.kubernetes.io/managed-by": "junction"}


def _deployment(system: System, name: str, cluster: Cluster, ports: list[tuple[str, int]]) -> dict[str, Any]:
    """The Deployment of one process: ``junction serve <system> --service <name>``."""
    labels = _labels(system, name)
    probe = {"httpGet": {"path": "/health", "port": "http"}}
    container = {
        "name": name,
        "image": cluster.image,
        "args": ["serve", system.name, "--service", name, "--host", "0.0.0.0", "--port", str(PORT),
                 "--data-dir", DATA],
        "ports": [{"name": port_name, "containerPort": port} for port_name, port in ports],
        "envFrom": [{"configMapRef": {"name": f"{system.name}-config"}},
                    {"secretRef": {"name": f"{system.name}-secrets"}}],
        "resources": cluster.resources.spec(),
        "readinessProbe": {**probe, "periodSeconds": 5},
        "livenessProbe": {**probe, "initialDelaySeconds": 15, "periodSeconds": 10, "failureThreshold": 3},
        "volumeMounts": [{"name": "data", "mountPath": DATA}],
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "allowPrivilegeEscalation": False},
    }
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": cluster.replicas.get(name, 1),
            "selector": {"matchLabels": {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": system.name}},
            "template": {"metadata": {"labels": labels},
                         "spec": {"containers": [container], "volumes": [{"name": "data", "emptyDir": {}}]}},
        },
    }


def _service(system: System, name: str, ports: list[tuple[str, int]]) -> dict[str, Any]:
    """The Service in front of one process's pods."""
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "labels": _labels(system, name)},
        "spec": {"selector": {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": system.name},
                 "ports": [{"name": port_name, "port": port, "targetPort": port_name} for port_name, port in ports]},
    }


def manifests(system: System, cluster: Cluster | None = None) -> list[dict[str, Any]]:
    """Every object of the system's deployment, in the order to apply them."""
    cluster = cluster or Cluster()
    unknown = sorted(set(cluster.replicas) - {s.name for s in system.services} - {"gateway"})
    if unknown:
        raise ValueError(f"{system.name} has no service {', '.join(unknown)}")
    config = {"JUNCTION_KAFKA_BOOTSTRAP": cluster.kafka_bootstrap, "JUNCTION_SMTP_HOST": cluster.smtp_host,
              "JUNCTION_LOG_LEVEL": "INFO",
              **{f"JUNCTION_{s.name.upper().replace('-', '_')}_URL": f"http://{s.name}:{PORT}/{s.name}"
                 for s in system.services}}
    secrets = {"JUNCTION_DATABASE_URL": cluster.database_url}
    if "rabbitmq" in system.brokers:
        secrets["JUNCTION_RABBITMQ_URL"] = cluster.rabbitmq_url
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{system.name}-config",
                                                                "labels": _labels(system, "config")},
         "data": config},
        {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
         "metadata": {"name": f"{system.name}-secrets", "labels": _labels(system, "secrets")},
         "stringData": secrets},
    ]
    for service in system.services:
        ports = [("http", PORT)] + ([("grpc", service.grpc_port)] if service.grpc_port else [])
        objects += [_deployment(system, service.name, cluster, ports), _service(system, service.name, ports)]
    objects += [_deployment(system, "gateway", cluster, [("http", PORT)]),
                _service(system, "gateway", [("http", system.port)])]  # the public port, to the pods' "http"
    return objects


class _Plain(yaml.SafeDumper):
    """Writes a repeated mapping out again instead of as an anchor and alias: manifests are read by people."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def to_yaml(objects: list[dict[str, Any]]) -> str:
    """The objects as one multi-document YAML stream (``kubectl apply -f -``)."""
    return yaml.dump_all(objects, Dumper=_Plain, sort_keys=False, default_flow_style=False)
