"""The worker against a registry it cannot reach: the pipeline keeps running, its alerts say
"registry unavailable", and they are the ones replay gives with the same registry.

One simulated hour on the Haikou shore goes through a real worker, the real connectors and
the real broker (:func:`pipeline.tools.demo.run_through_pipeline`) with ``registry_url``
pointing at a PostgreSQL port where nothing listens.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from test_replay_equals_kafka import SITE, START, TAIL_MS, _opened

from pipeline.registry.resolver import IdentityResolver
from pipeline.replay import replay
from pipeline.tools.demo import run_through_pipeline
from pipeline.tools.simulate import SimConfig, simulate

DEAD_POSTGRES = "postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=2"
DURATION_S = 3600


@pytest.mark.integration
@pytest.mark.timeout(1200)
def test_worker_with_an_unreachable_registry_keeps_running_and_says_so(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    night = tmp_path / "night"
    simulate(SITE, SimConfig(seed=2, start=START, duration_s=DURATION_S, fps=0.5), night)
    resolver = IdentityResolver(DEAD_POSTGRES)
    offline = replay(SITE, [night / "ais.nmea"], [night / "detections.jsonl"], registry=resolver)
    assert resolver.failures >= 1 and not resolver.available
    live = asyncio.run(
        run_through_pipeline(
            kafka_bootstrap, SITE, night, START, 40.0,
            worker_env={"SHOREWATCH_REGISTRY_URL": DEAD_POSTGRES},
        )
    )  # fmt: skip
    until_ms = int(START.timestamp() * 1000) + DURATION_S * 1000 - TAIL_MS
    # kinds, vessels and event times (a pair's position is sampled where the batches end:
    # test_replay_equals_kafka compares those)
    want = {k: v[:4] for k, v in _opened(offline, until_ms).items()}
    got = {k: v[:4] for k, v in _opened(live, until_ms).items()}
    assert any(k[0] == "unusual_landing" for k in want.values())
    assert want == got
    # every alert about an AIS vessel says its registry rules were not checked
    about_ais = [a for a in live if a.data.vessel.mmsi is not None]
    assert about_ais
    for a in about_ais:
        names = {f.name for f in a.data.factors}
        assert "registry_unavailable" in names, (a.data.kind, names)
        assert not names & {"unregistered", "name_mismatch", "registration_expired"}
    factors = {
        a.data.alert_id: [f.name for f in a.data.factors]
        for a in offline
        if a.data.status == "open"
    }
    for a in live:
        if a.data.alert_id in want and a.data.status == "open":
            assert [f.name for f in a.data.factors] == factors[a.data.alert_id]
