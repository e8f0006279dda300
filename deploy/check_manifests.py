"""Offline checks of the Kubernetes manifests and the Grafana dashboard (``make deploy-check``).

For each overlay: render it with ``kubectl kustomize``; check the Strimzi custom
resources for the fields their CRDs require (a small table below, from Strimzi's
``kafka.strimzi.io/v1`` CRDs: no CRD files are vendored); validate every other
resource with ``kubernetes-validate --strict`` against its bundled schemas. Also:
``deploy/k8s/kafka/topics.yaml`` equals what ``shorewatch topics manifest`` writes now,
every workload has probes, requests and limits, and the dashboard JSON is sound.

Exit status 0 when all pass, 1 otherwise (each problem on stderr).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "production")

STRIMZI_API = "kafka.strimzi.io/v1"
# kind -> (required paths, allowed keys of spec); a path is dotted, "[]" = every list item
STRIMZI: dict[str, tuple[tuple[str, ...], frozenset[str]]] = {
    "Kafka": (
        ("spec", "spec.kafka", "spec.kafka.listeners", "spec.kafka.listeners[].name",
         "spec.kafka.listeners[].port", "spec.kafka.listeners[].type",
         "spec.kafka.listeners[].tls"),
        frozenset({"kafka", "entityOperator", "kafkaExporter", "cruiseControl", "clusterCa",
                   "clientsCa", "maintenanceTimeWindows"}),
    ),
    "KafkaNodePool": (
        ("spec", "spec.replicas", "spec.roles", "spec.storage", "spec.storage.type",
         "metadata.labels.strimzi.io/cluster"),
        frozenset({"replicas", "roles", "storage", "resources", "jvmOptions", "template"}),
    ),
    "KafkaTopic": (
        ("spec", "spec.partitions", "spec.replicas", "metadata.labels.strimzi.io/cluster"),
        frozenset({"topicName", "partitions", "replicas", "config"}),
    ),
}  # fmt: skip
LISTENER_TYPES = {"internal", "route", "tlsroute", "loadbalancer", "nodeport", "ingress",
                  "cluster-ip"}  # fmt: skip
STORAGE_TYPES = {"ephemeral", "persistent-claim", "jbod"}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet"}


def _has(doc: Any, path: str) -> bool:
    head, _, rest = path.partition(".")
    if path.startswith("metadata.labels."):
        return path[len("metadata.labels.") :] in (doc.get("metadata", {}).get("labels") or {})
    if head.endswith("[]"):
        items = doc.get(head[:-2]) if isinstance(doc, dict) else None
        return isinstance(items, list) and bool(items) and all(_has(i, rest) for i in items)
    if not isinstance(doc, dict) or head not in doc or doc[head] is None:
        return False
    return _has(doc[head], rest) if rest else True


def check_strimzi(doc: dict[str, Any]) -> list[str]:
    """Problems of one Strimzi resource: API version, required fields, unknown spec keys."""
    kind, name = doc["kind"], doc.get("metadata", {}).get("name")
    where = f"{kind}/{name}"
    problems = []
    if doc.get("apiVersion") != STRIMZI_API:
        problems.append(f"{where}: apiVersion {doc.get('apiVersion')!r}, expected {STRIMZI_API}")
    required, allowed = STRIMZI[kind]
    problems += [f"{where}: missing {p}" for p in required if not _has(doc, p)]
    spec = doc.get("spec") or {}
    problems += [f"{where}: unknown field spec.{k}" for k in sorted(set(spec) - allowed)]
    if kind == "Kafka":
        for li in spec.get("kafka", {}).get("listeners") or []:
            if li.get("type") not in LISTENER_TYPES:
                problems.append(f"{where}: listener {li.get('name')}: type {li.get('type')!r}")
    if kind == "KafkaNodePool":
        if not set(spec.get("roles") or []) <= {"controller", "broker"}:
            problems.append(f"{where}: roles {spec.get('roles')}")
        st = spec.get("storage") or {}
        if st.get("type") not in STORAGE_TYPES:
            problems.append(f"{where}: storage type {st.get('type')!r}")
        for v in st.get("volumes") or []:
            if "type" not in v:
                problems.append(f"{where}: a storage volume without type")
    if kind == "KafkaTopic":
        for k in ("partitions", "replicas"):
            if not isinstance(spec.get(k), int) or spec[k] < 1:
                problems.append(f"{where}: spec.{k} must be a positive integer")
    return problems


def check_workload(doc: dict[str, Any]) -> list[str]:
    """Every container of a workload has requests, limits, liveness and readiness probes."""
    where = f"{doc['kind']}/{doc['metadata']['name']}"
    problems = []
    pod = doc["spec"]["template"]["spec"]
    if not (pod.get("securityContext") or {}).get("runAsNonRoot"):
        problems.append(f"{where}: pod does not set runAsNonRoot")
    for c in pod["containers"]:
        res = c.get("resources") or {}
        for part in ("requests", "limits"):
            if not res.get(part):
                problems.append(f"{where}/{c['name']}: no resource {part}")
        for probe in ("livenessProbe", "readinessProbe"):
            if probe not in c:
                problems.append(f"{where}/{c['name']}: no {probe}")
    return problems


def check_topics_current() -> list[str]:
    """The committed topics.yaml is what the registry generates now."""
    from pipeline.manifests import HEADER, render, topic_manifests

    path = K8S / "kafka" / "topics.yaml"
    if path.read_text() != render(topic_manifests(), header=HEADER):
        return [f"{path.relative_to(ROOT)} is stale: run `make manifests`"]
    return []


def check_dashboard(path: Path) -> list[str]:
    """The dashboard parses, has a uid, and every panel a query on the data-source variable."""
    try:
        dash = json.loads(path.read_text())
    except ValueError as exc:
        return [f"{path.name}: not JSON: {exc}"]
    problems = [] if dash.get("uid") and dash.get("title") else [f"{path.name}: no uid or title"]
    ids = [p.get("id") for p in dash.get("panels", [])]
    if len(ids) != len(set(ids)):
        problems.append(f"{path.name}: duplicate panel ids")
    for p in dash.get("panels", []):
        targets = p.get("targets") or []
        if not targets or not all(t.get("expr") and t.get("refId") for t in targets):
            problems.append(f"{path.name}: panel {p.get('title')!r} without a query")
        if not any(m in json.dumps(targets) for m in ("shorewatch_", "kafka_", "up{")):
            problems.append(f"{path.name}: panel {p.get('title')!r} queries no known metric")
    return problems


def check_overlay(name: str) -> list[str]:
    out = subprocess.run(
        ["kubectl", "kustomize", str(K8S / "overlays" / name)],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        return [f"overlay {name}: kubectl kustomize failed: {out.stderr.strip()}"]
    docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    problems: list[str] = []
    plain = []
    for d in docs:
        if d.get("kind") in STRIMZI:
            problems += [f"overlay {name}: {p}" for p in check_strimzi(d)]
        else:
            plain.append(d)
            if d.get("kind") in WORKLOADS:
                problems += [f"overlay {name}: {p}" for p in check_workload(d)]
    kinds = {d["kind"] for d in docs}
    for kind in ("Kafka", "KafkaNodePool", "KafkaTopic", "NetworkPolicy", "PodDisruptionBudget",
                 "Ingress", "Secret" if name == "dev" else "Deployment"):  # fmt: skip
        if kind not in kinds:
            problems.append(f"overlay {name}: no {kind}")
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump_all(plain, f, sort_keys=False)
    validator = Path(sys.executable).with_name("kubernetes-validate")
    res = subprocess.run(
        [str(validator), "--strict", "--quiet", f.name], capture_output=True, text=True
    )
    Path(f.name).unlink()
    if res.returncode != 0:
        problems.append(f"overlay {name}: kubernetes-validate --strict:\n{res.stdout}{res.stderr}")
    else:
        print(
            f"overlay {name}: {len(plain)} resources valid, {len(docs) - len(plain)} Strimzi checked"
        )
    return problems


def main() -> int:
    sys.path.insert(0, str(ROOT))
    problems = check_topics_current()
    for name in OVERLAYS:
        problems += check_overlay(name)
    problems += check_dashboard(K8S / "base" / "monitoring" / "shorewatch-dashboard.json")
    for p in problems:
        print(f"deploy-check: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
