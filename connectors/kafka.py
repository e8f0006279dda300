"""The producer every connector publishes through.

``acks='all'`` and idempotence on, keys as UTF-8 text, values as msgspec JSON.
A broker that does not answer at start is a :class:`BrokerUnreachable` within a
bounded time, never a hang.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError

from pipeline.errors import BrokerUnreachable
from pipeline.settings import Settings
from pipeline.topics import TopicSpec

_enc = msgspec.json.Encoder()


class RecordProducer:
    """Publishes records of the topic registry.

    :param bootstrap: Kafka bootstrap servers; default from :class:`Settings`
    :param linger_ms: how long the client may wait to fill a batch, ms
    """

    def __init__(self, bootstrap: str | None = None, *, linger_ms: int = 5,
                 client_id: str = "shorewatch-connector", start_timeout_s: float = 15.0):
        self.bootstrap = bootstrap or Settings.from_env().broker()
        self.start_timeout_s = start_timeout_s
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=True,
            linger_ms=linger_ms, client_id=client_id, max_batch_size=1 << 20,
            compression_type=None, request_timeout_ms=30000,
        )
        self.sent = 0

    async def start(self) -> None:
        try:
            await asyncio.wait_for(self._producer.start(), self.start_timeout_s)
        except (asyncio.TimeoutError, KafkaConnectionError, KafkaError, OSError) as exc:
            try:
                await self._producer.stop()
            except Exception:  # noqa: BLE001 - keep the original cause
                pass
            raise BrokerUnreachable(
                f"Kafka at {self.bootstrap} did not answer within {self.start_timeout_s:g} s: {exc}"
            ) from exc

    async def stop(self) -> None:
        await self._producer.stop()

    async def __aenter__(self) -> RecordProducer:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    async def send(self, topic: TopicSpec, key: str, record: msgspec.Struct) -> asyncio.Future:
        """Queue one record; returns the delivery future (await it to wait for the ack)."""
        fut = await self._producer.send(topic.name, _enc.encode(record), key=key.encode())
        self.sent += 1
        return fut

    async def send_and_wait(self, topic: TopicSpec, key: str, record: msgspec.Struct) -> Any:
        """Send one record and wait until all in-sync replicas have it."""
        return await (await self.send(topic, key, record))

    async def flush(self) -> None:
        await self._producer.flush()
