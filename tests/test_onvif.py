"""The ONVIF client against real devices on 127.0.0.1: the protocol-level test device
(``tests/peers/onvif_device.py``: SOAP 1.2 over HTTP with WS-Security digest) and the
``ipycam`` emulator from PyPI."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import xml.etree.ElementTree as ET

import cv2
import numpy as np
import pytest
import zeep.exceptions
from lxml import etree
from peers.ipycam_camera import start_ipycam
from peers.launch import free_port
from peers.onvif_device import OnvifDevice, ScriptedEvent

from connectors.onvif import (
    DiscoveredDevice,
    OnvifClient,
    PtzPosition,
    discover,
    event_kind,
    parse_notification,
    probe,
    ptz_pose,
    translate_error,
)
from pipeline.errors import CameraAuthError, CameraUnreachable, OnvifFault
from pipeline.site import AxisCalibration, CameraConfig, PtzCalibration

LINE = "tns1:RuleEngine/LineDetector/Crossed"
FIELD = "tns1:RuleEngine/FieldDetector/ObjectsInside"
MOTION = "tns1:VideoSource/MotionAlarm"
VENDOR = "tns1:RuleEngine/tnshik:ObjectDetector/Boat"


def hik_camera(**kw) -> CameraConfig:
    """A camera with the calibration of a Hikvision model (pan° = 179.87·p + 179.95)."""
    return CameraConfig(
        id="hk-ptz-01",
        lat=20.03,
        lon=110.27,
        height_m=25.0,
        heading_deg=10.0,
        tilt_deg=3.0,
        image_width=1920,
        image_height=1080,
        hfov_deg=60.0,
        ptz=PtzCalibration(
            pan=AxisCalibration(179.87, 179.95),
            tilt=AxisCalibration(-45.0, 45.0),
            zoom_hfov=((0.0, 60.0), (0.5, 20.0), (1.0, 3.0)),
        ),
        **kw,
    )


@pytest.fixture
async def device():
    dev = await OnvifDevice("admin", "s3cret", pan=0.5, tilt=0.8, zoom=0.25).start()
    yield dev
    await dev.stop()


@pytest.fixture
async def client(device):
    c = await OnvifClient(
        "cam-1", "127.0.0.1", device.port, "admin", "s3cret", precise_clock=False
    ).connect()
    yield c
    await c.close()


# --------------------------------------------------------------------------- unit


@pytest.mark.unit
def test_ptz_pose_through_the_hikvision_calibration():
    pose = ptz_pose(hik_camera(), PtzPosition(pan=0.5, tilt=0.8, zoom=0.25, t_ms=0))
    assert pose.heading_deg == pytest.approx((10.0 + 179.87 * 0.5 + 179.95) % 360.0)
    assert pose.tilt_deg == pytest.approx(-45.0 * 0.8 + 45.0)
    assert pose.hfov_deg == pytest.approx(40.0)
    # Full turn wraps into [0, 360)
    assert 0.0 <= ptz_pose(hik_camera(), PtzPosition(1.0, 0.0, 0.0, 0)).heading_deg < 360.0


@pytest.mark.unit
def test_ptz_pose_without_calibration_keeps_the_configured_pose():
    cam = CameraConfig(
        id="c",
        lat=0,
        lon=0,
        height_m=10,
        heading_deg=42.0,
        tilt_deg=2.0,
        image_width=640,
        image_height=360,
        hfov_deg=50.0,
    )
    pose = ptz_pose(cam, PtzPosition(0.3, 0.3, 0.3, 0))
    assert (pose.heading_deg, pose.tilt_deg, pose.hfov_deg) == (42.0, 2.0, 50.0)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("topic", "kind"),
    [
        (LINE, "line_crossed"),
        (FIELD, "field_inside"),
        (MOTION, "motion"),
        ("tns1:RuleEngine/CellMotionDetector/Motion", "motion"),
        (VENDOR, "object"),
        ("tns1:Device/Trigger/DigitalInput", "other"),
    ],
)
def test_event_kind(topic, kind):
    assert event_kind(topic) == kind


@pytest.mark.unit
def test_parse_notification_applies_the_clock_offset():
    xml = (
        '<tt:Message xmlns:tt="http://www.onvif.org/ver10/schema" UtcTime="2026-03-08T04:00:10.250Z" '
        'PropertyOperation="Changed"><tt:Source><tt:SimpleItem Name="Rule" Value="dock-field"/>'
        '</tt:Source><tt:Data><tt:SimpleItem Name="IsInside" Value="true"/></tt:Data></tt:Message>'
    )
    for element in (ET.fromstring(xml), etree.fromstring(xml)):
        ev = parse_notification("c", FIELD, element, clock_offset_ms=10_000, rx_t_ms=0)
        expected = dt.datetime(2026, 3, 8, 4, 0, 0, 250_000, tzinfo=dt.UTC).timestamp() * 1000
        assert ev.t_ms == expected
        assert (ev.kind, ev.rule, ev.state) == ("field_inside", "dock-field", True)
        assert ev.items["data.IsInside"] == "true"


@pytest.mark.unit
def test_translate_error():
    from lxml.etree import QName

    auth = zeep.exceptions.Fault(
        "Sender not authorized",
        code="env:Sender",
        subcodes=[QName("http://www.onvif.org/ver10/error", "NotAuthorized")],
    )
    assert isinstance(translate_error(auth, "x"), CameraAuthError)
    other = zeep.exceptions.Fault(
        "bad",
        code="env:Sender",
        subcodes=[QName("http://www.onvif.org/ver10/error", "InvalidArgVal")],
    )
    err = translate_error(other, "x")
    assert isinstance(err, OnvifFault) and err.code == "ter:InvalidArgVal"
    assert isinstance(translate_error(ConnectionRefusedError(), "x"), CameraUnreachable)
    assert isinstance(translate_error(TimeoutError(), "x"), CameraUnreachable)


@pytest.mark.unit
def test_cameras_yaml_entry_names_env_vars_not_secrets():
    d = DiscoveredDevice(
        "urn:uuid:1",
        ["http://127.0.0.1:8080/onvif/device_service"],
        ["onvif://www.onvif.org/name/Shore%20PTZ"],
    )
    text = d.cameras_yaml("hk-new-01")
    assert (
        "onvif: {host: 127.0.0.1, port: 8080, user_env: HK_NEW_01_USER, password_env: HK_NEW_01_PASSWORD}"
        in text
    )
    assert "'Shore PTZ'" in text


# --------------------------------------------------------------------------- own device


@pytest.mark.integration
async def test_device_information_services_profiles_and_uris(device, client):
    info = await client.device_info()
    assert (info.manufacturer, info.model) == ("Shorewatch", "TestPTZ-1")
    services = client.services()
    assert services["http://www.onvif.org/ver20/ptz/wsdl"] == f"{device.base_url}/onvif/ptz_service"
    assert "http://www.onvif.org/ver10/events/wsdl" in services
    [profile] = await client.profiles()
    assert (profile.token, profile.encoding, profile.width, profile.height, profile.ptz) == (
        "profile_main",
        "H264",
        1920,
        1080,
        True,
    )
    assert await client.stream_uri() == device.rtsp_url
    assert await client.snapshot_uri() == f"{device.base_url}/snapshot.jpg"


@pytest.mark.integration
async def test_ptz_status_to_pose(device, client):
    pos = await client.ptz_status()
    assert (pos.pan, pos.tilt, pos.zoom) == (0.5, 0.8, 0.25)
    device.pan, device.zoom = -0.25, 1.0
    pose = ptz_pose(hik_camera(), await client.ptz_status())
    assert pose.heading_deg == pytest.approx((10.0 - 179.87 * 0.25 + 179.95) % 360.0)
    assert pose.hfov_deg == pytest.approx(3.0)


@pytest.mark.integration
async def test_pullpoint_events_create_pull_renew_unsubscribe(device, client):
    sub = client.subscription(pull_timeout_s=1, termination_s=60)
    await sub.create()
    device.push_event(
        ScriptedEvent(
            LINE, {"VideoSourceConfigurationToken": "vsc", "Rule": "beach-line"}, {"ObjectId": "7"}
        )
    )
    device.push_event(ScriptedEvent(FIELD, {"Rule": "dock-field"}, {"IsInside": "true"}))
    device.push_event(ScriptedEvent(MOTION, {"Source": "vs1"}, {"State": "false"}))
    device.push_event(
        ScriptedEvent(VENDOR, {"Rule": "boat-detector"}, {"ObjectType": "Boat", "Score": "0.8"})
    )
    got = []
    while len(got) < 4:
        got += await sub.pull()
    assert [e.kind for e in got] == ["line_crossed", "field_inside", "motion", "object"]
    assert [e.rule for e in got] == ["beach-line", "dock-field", None, "boat-detector"]
    assert [e.state for e in got] == [None, True, False, None]
    assert got[0].items["data.ObjectId"] == "7" and got[0].camera_id == "cam-1"
    await sub.renew()
    [server_sub] = device.subscriptions.values()
    assert server_sub.renewals == 1 and sub.renew_count == 1
    await sub.unsubscribe()
    assert device.unsubscribed == [server_sub.sid] and not device.subscriptions


@pytest.mark.integration
async def test_subscription_is_renewed_before_it_expires(device, client):
    sub = client.subscription(pull_timeout_s=0.2, termination_s=4)
    await sub.create()
    [server_sub] = device.subscriptions.values()
    first_termination = server_sub.termination
    for _ in range(100):  # renewal is due after half the lifetime
        await sub.pull()
        if server_sub.renewals:
            break
    assert server_sub.renewals >= 1 and sub.renew_count == server_sub.renewals
    assert server_sub.termination > first_termination
    assert device.created_subscriptions == 1
    await sub.unsubscribe()


@pytest.mark.integration
@pytest.mark.parametrize("precise", [True, False])
async def test_event_times_are_corrected_by_the_camera_clock_offset(precise):
    skew_s = 3600.37  # a fraction of a second too: ONVIF clocks report whole seconds
    dev = await OnvifDevice("admin", "s3cret", clock_skew_s=skew_s).start()
    try:
        async with OnvifClient(
            "cam-skew", "127.0.0.1", dev.port, "admin", "s3cret", precise_clock=precise
        ) as c:
            # Whole seconds: ±0.5 s from one answer; the poll bounds it much tighter.
            tolerance_ms = c.clock_offset_bound_ms
            assert tolerance_ms < (500 if precise else 1000)
            assert abs(c.clock_offset_ms - skew_s * 1000) <= tolerance_ms
            sub = c.subscription(pull_timeout_s=1)
            await sub.create()
            camera_time = dev.now()
            dev.push_event(ScriptedEvent(MOTION, {}, {"IsMotion": "true"}, utc_time=camera_time))
            got = []
            while not got:
                got = await sub.pull()
            await sub.unsubscribe()
        true_ms = (camera_time.timestamp() - skew_s) * 1000
        assert abs(got[0].t_ms - true_ms) <= tolerance_ms + 1  # ms rounding of UtcTime
        assert got[0].state is True
    finally:
        await dev.stop()


@pytest.mark.integration
async def test_soap_fault_becomes_onvif_fault(device, client):
    device.fail_next("GetProfiles", "ter:InvalidArgVal", "scripted failure")
    with pytest.raises(OnvifFault) as info:
        await client.profiles()
    assert info.value.code == "ter:InvalidArgVal"
    assert "scripted failure" in info.value.reason
    with pytest.raises(OnvifFault) as info:
        await client.ptz_status("no-such-profile")
    assert "NoProfile" in info.value.code
    assert len(await client.profiles()) == 1  # the device still answers afterwards


@pytest.mark.integration
async def test_wrong_password_is_an_auth_error(device):
    with pytest.raises(CameraAuthError, match="refused the credentials"):
        await OnvifClient("cam-bad", "127.0.0.1", device.port, "admin", "wrong").connect()
    assert device.auth_failures >= 1


@pytest.mark.integration
async def test_closed_port_is_unreachable():
    with pytest.raises(CameraUnreachable):
        await OnvifClient("cam-gone", "127.0.0.1", free_port(), "admin", "x", timeout_s=5).connect()


@pytest.mark.integration
async def test_dropped_subscription_is_resubscribed(device, client):
    sub = client.subscription(pull_timeout_s=0.5)
    received = []
    first = asyncio.Event()
    second = asyncio.Event()

    async def consume():
        async for ev in sub.events(backoff_base_s=0.05, backoff_cap_s=0.2):
            received.append(ev)
            (second if first.is_set() else first).set()

    task = asyncio.create_task(consume())
    device.push_event(ScriptedEvent(LINE, {"Rule": "before-drop"}))
    await asyncio.wait_for(first.wait(), 60)
    device.drop_subscriptions()  # e.g. the camera rebooted
    device.push_event(ScriptedEvent(LINE, {"Rule": "after-drop"}))  # held for the next subscription
    await asyncio.wait_for(second.wait(), 60)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert [e.rule for e in received] == ["before-drop", "after-drop"]
    assert device.created_subscriptions == 2
    assert len(device.unsubscribed) == 1  # the live one is unsubscribed on shutdown


@pytest.mark.integration
async def test_ws_discovery_probe_finds_the_device(device):
    found = await discover(2.0, "127.0.0.1", [("127.0.0.1", device.discovery_port)])
    [d] = found
    assert d.xaddrs == [f"{device.base_url}/onvif/device_service"]
    assert (d.host, d.port) == ("127.0.0.1", device.port)
    assert d.scope("name") == "TestPTZ-1" and "NetworkVideoTransmitter" in d.types


@pytest.mark.integration
async def test_ws_discovery_multicast_probe_on_loopback():
    port = free_port()  # a free TCP port number, used for UDP: nothing listens on it
    dev = await OnvifDevice().start(discovery_port=None, multicast_port=port)
    try:
        found = await discover(2.0, "127.0.0.1", port=port)
    finally:
        await dev.stop()
    assert [d.xaddrs for d in found] == [[f"{dev.base_url}/onvif/device_service"]]


@pytest.mark.integration
async def test_cameras_discover_command_prints_a_cameras_yaml_entry(device, capsys):
    from pipeline.cli import main

    rc = await asyncio.to_thread(
        main,
        [
            "cameras",
            "discover",
            "--timeout",
            "1.5",
            "--interface",
            "127.0.0.1",
            "--target",
            f"127.0.0.1:{device.discovery_port}",
        ],
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert "1 ONVIF device" in out
    assert f"onvif: {{host: 127.0.0.1, port: {device.port}, user_env: CAM_01_USER" in out


@pytest.mark.integration
async def test_cameras_probe_command(device, capsys, monkeypatch):
    from pipeline.cli import main

    monkeypatch.setenv("PROBE_USER", "admin")
    monkeypatch.setenv("PROBE_PASSWORD", "s3cret")
    argv = [
        "cameras",
        "probe",
        "--host",
        "127.0.0.1",
        "--port",
        str(device.port),
        "--user-env",
        "PROBE_USER",
        "--password-env",
        "PROBE_PASSWORD",
        "--id",
        "hk-new-01",
    ]
    assert await asyncio.to_thread(main, argv) == 0
    out = capsys.readouterr().out
    assert "# Shorewatch TestPTZ-1" in out
    assert "    image_width: 1920\n    image_height: 1080\n" in out
    assert f"    rtsp_url: {device.rtsp_url}\n" in out
    assert "PTZ position now: {'pan': 0.5, 'tilt': 0.8, 'zoom': 0.25}" in out
    assert "s3cret" not in out
    assert await asyncio.to_thread(main, [*argv, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["ptz_position"] == {"pan": 0.5, "tilt": 0.8, "zoom": 0.25}
    assert result["problems"] == {}


# --------------------------------------------------------------------------- ipycam emulator


@pytest.fixture
def ipycam():
    peer = start_ipycam("operator", "pa55word", rtsp_port=free_port())
    peer.feed(3)
    yield peer
    peer.stop()


@pytest.mark.integration
async def test_ipycam_device_profiles_stream_and_snapshot(ipycam):
    async with OnvifClient("ipy", "127.0.0.1", ipycam.port, "operator", "pa55word") as c:
        info = await c.device_info()
        assert (info.manufacturer, info.model) == ("IPyCam", "VirtualCam-1")
        assert abs(c.clock_offset_ms) < 2000  # the emulator runs on the local clock
        profiles = await c.profiles()
        assert [p.token for p in profiles] == ["Profile_Main", "Profile_Sub"]
        assert (profiles[0].width, profiles[0].height) == (640, 360)
        assert (
            await c.stream_uri() == f"rtsp://127.0.0.1:{ipycam.camera.config.rtsp_port}/video_main"
        )
        assert (await c.stream_uri("Profile_Sub")).endswith("/video_sub")
        assert await c.snapshot_uri() == f"http://127.0.0.1:{ipycam.port}/snapshot.jpg"
        jpeg = await c.snapshot_jpeg()
        image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (360, 640, 3)
        probed = await probe(c)
    # ipycam's malformed PTZ GetStatus answer is reported, not fatal
    assert probed["image_width"] == 640 and probed["ptz_position"] is None
    assert "BadResponse" in probed["problems"]["ptz_position"]


@pytest.mark.integration
async def test_ipycam_rejects_a_wrong_password(ipycam):
    with pytest.raises(CameraAuthError):
        await OnvifClient("ipy", "127.0.0.1", ipycam.port, "operator", "nope").connect()


@pytest.mark.integration
async def test_ipycam_malformed_ptz_answer_is_a_clear_fault(ipycam):
    # ipycam 1.3.0 answers GetStatus with an undeclared "ptz:" prefix: not parseable XML-namespace-wise.
    async with OnvifClient("ipy", "127.0.0.1", ipycam.port, "operator", "pa55word") as c:
        with pytest.raises(OnvifFault) as info:
            await c.ptz_status()
    assert info.value.code == "shorewatch:BadResponse"
