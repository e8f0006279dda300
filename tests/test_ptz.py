"""PTZ control: the calibrated camera model in reverse, and the ONVIF moves against the
protocol-level test device (moves take time; ``GetStatus`` reports the way there)."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from peers.onvif_device import OnvifDevice
from test_onvif import hik_camera

from connectors.onvif import OnvifClient, PtzPosition, ptz_pose
from pipeline.core.geo import destination_point
from pipeline.core.ptz import PtzModel, aim, visible_range_m
from pipeline.errors import CameraUnreachable, OnvifFault


@pytest.mark.unit
def test_aim_inverts_the_calibrated_pose_for_targets_all_around() -> None:
    cam = hik_camera()
    model = PtzModel.from_camera(cam)
    brg = np.arange(0.0, 360.0, 7.5)
    rng = np.linspace(500.0, 9_000.0, len(brg))
    lon, lat = destination_point(cam.lon, cam.lat, brg, rng)
    a = aim(model, lon, lat, vessel_length_m=15.0, fill=0.3)
    assert a.reachable.all()
    for i in range(len(brg)):
        pose = ptz_pose(cam, PtzPosition(float(a.pan[i]), float(a.tilt[i]), float(a.zoom[i]), 0))
        err = (pose.heading_deg - brg[i] + 180.0) % 360.0 - 180.0
        assert abs(err) < 1e-6, (brg[i], pose.heading_deg)
        assert pose.tilt_deg == pytest.approx(a.depression_deg[i], abs=1e-9)
        # within the zoom table the field of view is what was asked for
        if 3.0 <= a.hfov_deg[i] <= 60.0:
            assert pose.hfov_deg == pytest.approx(a.hfov_deg[i], rel=1e-6)
    # the vessel fills 30 % of the width: a farther vessel needs a narrower field
    assert np.all(np.diff(a.hfov_deg[(a.hfov_deg > 3.0)]) < 0)
    # the depression is that of the waterline (flat-sea part plus curvature)
    assert a.depression_deg[0] > np.degrees(np.arctan(cam.height_m / rng[0]))


@pytest.mark.unit
def test_aim_widens_for_uncertain_positions_and_refuses_what_it_cannot_reach() -> None:
    cam = hik_camera()
    model = PtzModel.from_camera(cam)
    lon, lat = destination_point(cam.lon, cam.lat, np.array([45.0, 45.0]), np.array([8e3, 8e3]))
    a = aim(model, lon, lat, position_sigma_m=np.array([0.0, 150.0]))
    assert a.hfov_deg[1] > a.hfov_deg[0] and a.zoom[1] < a.zoom[0]
    far_lon, far_lat = destination_point(cam.lon, cam.lat, 45.0, visible_range_m(25.0) + 100)
    assert not aim(model, far_lon, far_lat).reachable[0]
    # a camera that pans only +-90 degrees about its heading cannot look behind itself
    narrow = PtzModel(cam.lon, cam.lat, 25.0, 10.0, 90.0, 0.0, -45.0, 45.0, ((0, 60), (1, 3)), 2e4)
    lon2, lat2 = destination_point(cam.lon, cam.lat, np.array([60.0, 190.0]), np.array([3e3, 3e3]))
    b = aim(narrow, lon2, lat2)
    assert b.reachable.tolist() == [True, False] and np.isnan(b.pan[1])


@pytest.fixture
async def ptz_device():
    dev = await OnvifDevice("admin", "s3cret", pan=0.0, tilt=0.9, zoom=0.0, pan_speed=0.8).start()
    dev.presets["1"] = ("harbour mouth", -0.25, 0.95, 0.4)
    yield dev
    await dev.stop()


@pytest.fixture
async def ptz_client(ptz_device):
    c = await OnvifClient(
        "cam-ptz", "127.0.0.1", ptz_device.port, "admin", "s3cret", precise_clock=False
    ).connect()
    yield c
    await c.close()


@pytest.mark.integration
async def test_cue_to_a_geo_position_reaches_the_computed_pose(ptz_device, ptz_client) -> None:
    cam = hik_camera()
    target_lon, target_lat = destination_point(cam.lon, cam.lat, 200.0, 3_500.0)
    a = aim(PtzModel.from_camera(cam), target_lon, target_lat, vessel_length_m=12.0)
    pan, tilt, zoom = float(a.pan[0]), float(a.tilt[0]), float(a.zoom[0])
    t0 = time.monotonic()
    await ptz_client.absolute_move(pan, tilt, zoom)
    on_the_way = await ptz_client.ptz_status()
    assert on_the_way.moving and not on_the_way.close_to(pan, tilt, zoom)
    reached = await ptz_client.wait_for_position(pan, tilt, zoom, tolerance=1e-4, timeout_s=20)
    travel_s = time.monotonic() - t0
    # pan travels |0.0 - pan| at 0.8 units/s: the move took time, as a real head's does
    assert travel_s >= abs(pan) / 0.8 * 0.9
    assert reached.moving is False and reached.close_to(pan, tilt, zoom, 1e-4)
    pose = ptz_pose(cam, reached)
    assert abs((pose.heading_deg - 200.0 + 180.0) % 360.0 - 180.0) < 0.01
    assert pose.tilt_deg == pytest.approx(a.depression_deg[0], abs=0.01)
    jpeg = await ptz_client.snapshot_jpeg()
    assert jpeg[:2] == b"\xff\xd8"
    shot = ptz_device.snapshots[-1]
    assert shot[3] is False and abs(shot[0] - pan) < 1e-4  # taken at the pose, not on the way
    assert ("AbsoluteMove", pytest.approx((pan, tilt, zoom))) in ptz_device.moves


@pytest.mark.integration
async def test_continuous_move_stop_presets_and_home(ptz_device, ptz_client) -> None:
    await ptz_client.continuous_move(0.5, 0.0, timeout_s=10)
    await asyncio.sleep(0.3)
    moving = await ptz_client.ptz_status()
    assert moving.moving and moving.pan > 0.0
    await ptz_client.stop()
    stopped = await ptz_client.ptz_status()
    assert stopped.moving is False
    await asyncio.sleep(0.2)
    assert (await ptz_client.ptz_status()).pan == pytest.approx(stopped.pan, abs=1e-6)
    assert await ptz_client.presets() == {"1": "harbour mouth"}
    await ptz_client.goto_preset("1")
    await ptz_client.wait_for_position(-0.25, 0.95, 0.4, timeout_s=20)
    with pytest.raises(OnvifFault):
        await ptz_client.goto_preset("nope")
    await ptz_client.goto_home()
    home = await ptz_client.wait_for_position(0.0, 0.9, 0.0, timeout_s=20)
    assert home.moving is False
    with pytest.raises(ValueError):
        await ptz_client.absolute_move(1.5, 0.0, 0.0)


@pytest.mark.integration
async def test_a_camera_lost_mid_move_raises_unreachable(ptz_device, ptz_client) -> None:
    ptz_client.timeout_s = 2.0
    await ptz_client.absolute_move(-1.0, 0.0, 1.0)
    await ptz_device.stop()
    with pytest.raises(CameraUnreachable):
        await ptz_client.wait_for_position(-1.0, 0.0, 1.0, timeout_s=20)
