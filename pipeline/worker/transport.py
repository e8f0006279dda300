"""The Kafka transport of the worker: an idempotent producer and a low-latency consumer."""

from __future__ import annotations

from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

from pipeline.worker.batching import FETCH_MAX_WAIT_MS


class IdempotentProducer(faust_aiokafka.Producer):
    """Faust's producer with ``acks=all`` and idempotence always on."""

    def _settings_extra(self) -> dict[str, Any]:
        return {"acks": "all", "enable_idempotence": True}


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread with a 100 ms fetch wait instead of its fixed 1.5 s."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = FETCH_MAX_WAIT_MS  # read by the fetcher at start
        return consumer


class LowLatencyConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> Any:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class IdempotentTransport(faust_aiokafka.Transport):
    Producer = IdempotentProducer
    Consumer = LowLatencyConsumer
