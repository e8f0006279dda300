"""Kubernetes manifests from the topic registry, and the offline checks of deploy/
(``make deploy-check`` renders and validates the overlays themselves)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

from pipeline import topics
from pipeline.errors import ConfigError
from pipeline.manifests import HEADER, kafka_topic, render, topic_manifests

ROOT = Path(__file__).resolve().parents[1]


def _checker():
    spec = importlib.util.spec_from_file_location(
        "check_manifests", ROOT / "deploy/check_manifests.py"
    )
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.unit
def test_every_registry_topic_becomes_a_kafka_topic():
    docs = topic_manifests(cluster="coast", replicas=3)
    assert [d["spec"]["topicName"] for d in docs] == [t.name for t in topics.ALL]
    for d, t in zip(docs, topics.ALL, strict=True):
        assert d["metadata"]["labels"]["strimzi.io/cluster"] == "coast"
        assert d["spec"]["partitions"] == t.partitions
        assert d["spec"]["config"]["retention.ms"] == str(t.retention_ms)
        assert d["spec"]["config"]["cleanup.policy"] == t.cleanup_policy
        assert d["spec"]["config"]["min.insync.replicas"] == "2"
    one = topic_manifests(replicas=1, partitions=12)
    assert {d["spec"]["partitions"] for d in one} == {12}  # co-partitioning kept
    assert all("min.insync.replicas" not in d["spec"]["config"] for d in one)
    text = render(docs, header=HEADER)
    assert text.startswith(HEADER) and list(yaml.safe_load_all(text)) == docs


@pytest.mark.unit
def test_invalid_names_and_replicas_are_config_errors():
    bad = topics.TopicSpec("Shorewatch_Bad", "k", topics.records.Alert, "x.json")
    with pytest.raises(ConfigError):
        kafka_topic(bad, cluster="c", replicas=3)
    with pytest.raises(ConfigError):
        kafka_topic(topics.ALERT, cluster="c", replicas=0)


@pytest.mark.unit
def test_committed_topics_are_current_and_the_strimzi_check_finds_gaps():
    check = _checker()
    assert check.check_topics_current() == []
    good = topic_manifests()[0]
    assert check.check_strimzi(good) == []
    broken = yaml.safe_load(yaml.safe_dump(good))
    del broken["spec"]["partitions"]
    broken["spec"]["partitons"] = 4
    problems = check.check_strimzi(broken)
    assert any("missing spec.partitions" in p for p in problems)
    assert any("unknown field spec.partitons" in p for p in problems)
    pool = {"apiVersion": "kafka.strimzi.io/v1", "kind": "KafkaNodePool",
            "metadata": {"name": "p", "labels": {"strimzi.io/cluster": "c"}},
            "spec": {"replicas": 1, "roles": ["broker", "gateway"], "storage": {"type": "disk"}}}  # fmt: skip
    problems = check.check_strimzi(pool)
    assert any("roles" in p for p in problems) and any("storage type" in p for p in problems)
