"""The camera fleet benchmark: its recall scoring, and one short run of two cameras
(adaptive on) through the production camera workers on the real model and clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_adaptive_analysis import clip_dir  # noqa: F401 - fixture

from pipeline.tools.bench_fleet import run_fleet, score_recall


@pytest.mark.unit
def test_recall_counts_the_latest_record_within_the_window() -> None:
    gt = {49: np.array([[100.0, 200.0, 50.0, 20.0], [400.0, 210.0, 30.0, 10.0]])}
    played = {1000: 44, 1200: 49, 5000: 49, 9000: 49, 12_000: 49}
    hit_both = gt[49] + 2.0
    published = [
        (1100, hit_both),  # 100 ms before the labelled frame at 1200: both found
        (4900, np.array([[100.0, 200.0, 50.0, 20.0]])),  # one of two
        (5100, hit_both),  # after the frame at 5000: not used for it
        (7000, hit_both),  # 2 s before 9000: too old, both missed
        (11_950, np.zeros((0, 4))),  # the latest record at 12000 found nothing
    ]
    found, shown = score_recall(played, published, gt, since_ms=0, until_ms=20_000)
    assert (found, shown) == (3, 8)
    assert score_recall(played, published, gt, since_ms=1100, until_ms=1300) == (2, 2)


@pytest.mark.integration
def test_a_short_fleet_run(clip_dir: Path, yolo_dir: Path) -> None:  # noqa: F811
    r = run_fleet(
        clip_dir,
        yolo_dir,
        cameras=2,
        busy_share=0.5,
        duration_s=6.0,
        warmup_s=2.0,
        phases=(True,),
        conf=0.2,
    )
    assert r["mix"] == {"busy": 1, "quiet": 1, "still": 0}
    (ph,) = r["phases"]
    assert ph["adaptive"] is True and ph["errors"] == 0
    assert ph["cores_used"] > 0 and ph["fps_seen_per_camera"] > 0
    assert 0 < ph["analysed_share"] < 1  # the quiet camera is mostly not analysed
    assert ph["recall"] is not None  # the busy camera showed labelled frames
    assert ph["batching"]["frames"] >= sum(ph["analysed_by_reason"].values()) - 2
