"""Kubernetes manifests generated from the code: Strimzi ``KafkaTopic`` resources.

The topic registry (:mod:`pipeline.topics`) is the one place that names topics,
partitions and retention; ``shorewatch topics manifest`` writes it as ``KafkaTopic``
custom resources for the Strimzi topic operator, so a cluster's topics cannot drift
from what the workers expect (co-partitioning needs equal partition counts).

>>> docs = topic_manifests(cluster="shorewatch", replicas=3)
>>> docs[0]["kind"], docs[0]["spec"]["topicName"]
('KafkaTopic', 'shorewatch.ais.raw.v1')
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import yaml

from pipeline import topics
from pipeline.errors import ConfigError

STRIMZI_API = "kafka.strimzi.io/v1"
"""The Strimzi API version the manifests use (the only one Strimzi 1.x serves)."""

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def kafka_topic(
    spec: topics.TopicSpec,
    *,
    cluster: str,
    replicas: int,
    partitions: int | None = None,
    namespace: str | None = None,
) -> dict[str, Any]:
    """One ``KafkaTopic`` resource for a registry topic.

    :param cluster: name of the Strimzi ``Kafka`` resource (label ``strimzi.io/cluster``)
    :param replicas: replication factor; ``min.insync.replicas`` is 2 when it is 3 or more
    :param partitions: override of the registry's partition count (the same for every
        topic, or co-partitioning breaks)
    :raises ConfigError: a topic name that is not a valid Kubernetes resource name
    """
    if replicas < 1:
        raise ConfigError(f"replicas must be at least 1, got {replicas}")
    if not _DNS_SUBDOMAIN.match(spec.name):
        raise ConfigError(f"topic {spec.name!r} is not a valid Kubernetes resource name")
    config: dict[str, Any] = dict(spec.config())
    if replicas >= 3:
        config["min.insync.replicas"] = "2"
    metadata: dict[str, Any] = {
        "name": spec.name,
        "labels": {
            "strimzi.io/cluster": cluster,
            "app.kubernetes.io/part-of": "shorewatch",
            "shorewatch.io/internal": "true" if spec.internal else "false",
        },
        "annotations": {"shorewatch.io/key": spec.key, "shorewatch.io/schema": spec.schema_file},
    }
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": STRIMZI_API,
        "kind": "KafkaTopic",
        "metadata": metadata,
        "spec": {
            "topicName": spec.name,
            "partitions": int(partitions or spec.partitions),
            "replicas": int(replicas),
            "config": config,
        },
    }


def topic_manifests(
    *,
    cluster: str = "shorewatch",
    replicas: int = 3,
    partitions: int | None = None,
    namespace: str | None = None,
    specs: Iterable[topics.TopicSpec] = topics.ALL,
) -> list[dict[str, Any]]:
    """A ``KafkaTopic`` for every registry topic, in registry order."""
    return [
        kafka_topic(
            s, cluster=cluster, replicas=replicas, partitions=partitions, namespace=namespace
        )
        for s in specs
    ]


def render(docs: Iterable[dict[str, Any]], header: str = "") -> str:
    """Resources as one multi-document YAML text (keys in the order written)."""
    parts = [yaml.safe_dump(d, sort_keys=False, default_flow_style=False) for d in docs]
    text = "---\n" + "---\n".join(parts)
    return (header + text) if header else text
