"""Every wait of the console has a deadline: its feed stops even when the stop meets a
broker answer that has just arrived (the race that made a whole-suite run hang in a
console's shutdown), and its PostgreSQL store neither connects nor waits on a lock forever."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import pytest

from pipeline.console import store as store_mod
from pipeline.console.feed import Feed
from pipeline.console.store import ActionStore
from pipeline.errors import ActionStoreError
from pipeline.tasks import cancel_and_wait


def _waiting() -> list[str]:
    """Each unfinished task and the line it waits on (what a hang is stuck in)."""
    out = []
    for t in asyncio.all_tasks():
        if t is asyncio.current_task() or t.done():
            continue
        frame = t.get_stack()[-1:]  # a suspended task: its outermost coroutine
        where = f"{frame[0].f_code.co_name}:{frame[0].f_lineno}" if frame else "?"
        out.append(f"{t.get_name()} at {where}")
    return sorted(out)


@pytest.mark.integration
async def test_a_feed_stops_when_the_stop_meets_a_health_answer(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """The broker's answer to a health check lands in the same loop turn as the stop:
    ``asyncio.wait_for`` of Python 3.11 returns that answer and drops the cancellation,
    and a feed that then awaited its health task without a deadline never stopped."""
    store = ActionStore(":memory:")
    feed = Feed(kafka_bootstrap, store, lambda _e, _p: None, evidence_dir=tmp_path)
    await feed.start()
    try:
        await asyncio.wait_for(feed.ready.wait(), 60)
        assert feed._consumer is not None
        client = feed._consumer._client
        real = client.fetch_all_metadata
        answered, release = asyncio.Event(), asyncio.Event()

        async def held_answer():  # the broker has answered; hold it until the stop begins
            md = await real()
            answered.set()
            await release.wait()
            return md

        client.fetch_all_metadata = held_answer
        await asyncio.wait_for(answered.wait(), 30)  # a health check is 2 s apart
        release.set()  # the answer completes in the turn the stop cancels the feed
        stopping = asyncio.ensure_future(feed.stop())
        done, _ = await asyncio.wait({stopping}, timeout=30)
        assert done, f"the feed did not stop within 30 s; still waiting: {_waiting()}"
        stopping.result()  # a task still running at the feed's own deadline: ConsoleError
        assert all(t.done() for t in feed._tasks)
    finally:  # whatever a failed stop left running
        left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        await cancel_and_wait(left, every_s=0.1, timeout_s=10)
        store.close()


@pytest.mark.integration
def test_a_postgresql_store_gives_up_on_a_server_that_does_not_answer(monkeypatch) -> None:
    """A port that takes the connection and never answers (a server hung under load)."""
    monkeypatch.setattr(store_mod, "CONNECT_TIMEOUT_S", 2)
    with socket.socket() as mute:
        mute.bind(("127.0.0.1", 0))
        mute.listen(8)  # the kernel completes the handshake; nothing ever replies
        port = mute.getsockname()[1]
        t0 = time.monotonic()
        with pytest.raises(ActionStoreError, match="PostgreSQL store"):
            ActionStore(f"postgresql://postgres@127.0.0.1:{port}/postgres")
        assert time.monotonic() - t0 < 30


@pytest.mark.integration
def test_a_postgresql_store_gives_up_on_a_held_lock_and_recovers(
    postgres_url: str, monkeypatch
) -> None:
    """Another session holds the action table: a read fails within the statement deadline
    (rolled back, a clear error), and the same store works once the lock is gone."""
    import psycopg

    monkeypatch.setattr(store_mod, "STATEMENT_TIMEOUT_S", 1)
    store = ActionStore(postgres_url)
    holder = psycopg.connect("postgresql://" + postgres_url.split("://", 1)[1])
    try:
        holder.execute("LOCK TABLE console_action IN ACCESS EXCLUSIVE MODE")  # in a transaction
        t0 = time.monotonic()
        with pytest.raises(ActionStoreError, match="lock timeout|statement timeout"):
            store.audit(alert_id="nobody")
        assert time.monotonic() - t0 < 20
        holder.rollback()
        assert store.audit(alert_id="nobody") == []
    finally:
        holder.close()
        store.close()
