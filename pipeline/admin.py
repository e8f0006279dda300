"""Broker administration: reachability checks and idempotent topic creation.

``shorewatch topics create`` creates every topic of :mod:`pipeline.topics` that is
missing, with its partitions and configuration, and leaves existing ones alone
(reporting any whose partition count differs, which would break co-partitioning).
``shorewatch topics list`` shows them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from pipeline import topics
from pipeline.errors import BrokerError, BrokerUnreachable
from pipeline.settings import Settings


async def _admin(bootstrap: str, timeout_s: float) -> AIOKafkaAdminClient:
    client = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        request_timeout_ms=int(timeout_s * 1000),
        client_id="shorewatch-admin",
    )
    try:
        await asyncio.wait_for(client.start(), timeout_s)
    except (TimeoutError, KafkaConnectionError, KafkaError, OSError) as exc:
        await _close_quietly(client)
        raise BrokerUnreachable(
            f"Kafka at {bootstrap} did not answer within {timeout_s:g} s ({type(exc).__name__}: {exc})"
        ) from exc
    return client


async def _close_quietly(client: AIOKafkaAdminClient) -> None:
    try:
        await client.close()
    except Exception:  # noqa: BLE001 - closing a half-open client must not mask the cause
        pass


async def acheck_broker(bootstrap: str, timeout_s: float = 10.0) -> int:
    """Ask the broker for its topics.

    :returns: the number of topics
    :raises BrokerUnreachable: no answer within ``timeout_s`` seconds
    """
    client = await _admin(bootstrap, timeout_s)
    try:
        names = await asyncio.wait_for(client.list_topics(), timeout_s)
    except (TimeoutError, KafkaError) as exc:
        raise BrokerUnreachable(f"Kafka at {bootstrap}: list topics failed: {exc}") from exc
    finally:
        await _close_quietly(client)
    return len(names)


def check_broker(bootstrap: str, timeout_s: float = 10.0) -> int:
    """Blocking :func:`acheck_broker`."""
    return asyncio.run(acheck_broker(bootstrap, timeout_s))


@dataclass(frozen=True, slots=True)
class CreateReport:
    created: list[str]
    existing: list[str]
    mismatched: list[str]


async def acreate_topics(
    bootstrap: str, partitions: int | None = None, timeout_s: float = 15.0
) -> CreateReport:
    """Create every registry topic that does not exist yet.

    :param partitions: override of each topic's partition count (tests, big sites)
    """
    client = await _admin(bootstrap, timeout_s)
    try:
        existing = set(await client.list_topics())
        wanted = [t for t in topics.ALL if t.name not in existing]
        created: list[str] = []
        if wanted:
            new = [
                NewTopic(
                    t.name,
                    num_partitions=partitions or t.partitions,
                    replication_factor=1,
                    topic_configs=t.config(),
                )
                for t in wanted
            ]
            try:
                await client.create_topics(new, timeout_ms=int(timeout_s * 1000))
                created = [t.name for t in wanted]
            except TopicAlreadyExistsError:
                created = []
        desc = await client.describe_topics([t.name for t in topics.ALL])
        counts = {d["topic"]: len(d["partitions"]) for d in desc}
        mismatched = [
            f"{t.name} has {counts.get(t.name)} partitions, expected {partitions or t.partitions}"
            for t in topics.ALL
            if t.name not in created
            and counts.get(t.name) not in (None, partitions or t.partitions)
        ]
        return CreateReport(created, sorted(existing & {t.name for t in topics.ALL}), mismatched)
    except KafkaError as exc:
        raise BrokerError(f"creating topics on {bootstrap}: {exc}") from exc
    finally:
        await _close_quietly(client)


def cmd_create(args: argparse.Namespace) -> int:
    settings = Settings.from_env(args.settings)
    report = asyncio.run(acreate_topics(settings.broker(), settings.partitions))
    for name in report.created:
        print(f"created {name}")
    if not report.created:
        print(f"all {len(topics.ALL)} topics exist already")
    for line in report.mismatched:
        print(f"warning: {line}", file=sys.stderr)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    for t in topics.ALL:
        print(
            f"{t.name:34} key={t.key:10} partitions={t.partitions} "
            f"cleanup={t.cleanup_policy:13} retention_ms={t.retention_ms} schema=schemas/{t.schema_file}"
        )
    return 0
