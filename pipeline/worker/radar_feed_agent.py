"""The radar feed agent: radar target reports (``shorewatch.radar.target.v1``) re-keyed by
area onto ``shorewatch.fusion.input.v1``, for the area step
(:mod:`pipeline.engine.radar_area`). Reports of a radar the site's ``radars.yaml`` does not
list are dead-lettered (``unknown_radar``); so is a record that does not decode."""

from __future__ import annotations

from typing import Any

import faust
import msgspec

from pipeline import topics
from pipeline.deadletter import Reason, dead_letter
from pipeline.radars import load_radars
from pipeline.worker.batching import Metrics, json_encoder, raw_topic, wall_ms
from schemas import records


def _register_radar_feed(app: faust.App, site: Any) -> None:
    metrics: Metrics = app.shorewatch_metrics  # type: ignore[attr-defined]
    dec = msgspec.json.Decoder(records.RadarTarget)
    fusion = raw_topic(app, topics.FUSION_INPUT)
    dead = raw_topic(app, topics.DEADLETTER)
    radars = set(load_radars(site.path))
    area = site.name

    async def reject(reason: Reason, key: str, detail: str, value: bytes) -> None:
        metrics.add({f"radar.{reason.value}": 1})
        rec = dead_letter(reason, source="radar.target", stage="radar.target", detail=detail,
                          raw=value, rx_t_ms=wall_ms())  # fmt: skip
        await dead.send(key=key.encode(), value=json_encoder.encode(rec))

    @app.agent(raw_topic(app, topics.RADAR_TARGET), name="shorewatch.radar_feed")
    async def radar_feed(stream: faust.StreamT) -> None:
        async for value in stream:
            try:
                rep = dec.decode(value)
            except msgspec.DecodeError as exc:
                await reject(Reason.UNDECODABLE_RECORD, "radar.target", str(exc), value)
                continue
            if rep.radar_id not in radars:
                detail = f"radar {rep.radar_id!r} is not in site {area!r}'s radars.yaml"
                await reject(Reason.UNKNOWN_RADAR, rep.radar_id, detail, value)
                continue
            await fusion.send(
                key=area.encode(),
                value=json_encoder.encode(records.FusionInput(area=area, radar=rep)),
            )
