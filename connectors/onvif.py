"""ONVIF cameras: device, media, PTZ and PullPoint events (onvif-zeep-async), and WS-Discovery.

:class:`OnvifClient` wraps :class:`onvif.ONVIFCamera` and turns every failure into
the Shorewatch exception tree:

- a SOAP fault with subcode ``ter:NotAuthorized`` (or HTTP 401) -> :class:`CameraAuthError`;
- any other SOAP fault -> :class:`OnvifFault` with the fault's subcode (or code) and reason;
- no TCP answer, a timeout, a closed connection -> :class:`CameraUnreachable`.

Event times are corrected by the camera's clock offset, measured with
``GetSystemDateAndTime`` (the midpoint of the request is taken as the moment the
camera read its clock; ONVIF reports whole seconds, so the offset is good to about
one second, or to a few tens of milliseconds with ``precise_clock``).

:class:`EventSubscription` drives a PullPoint subscription by hand (create, pull,
renew before expiry, unsubscribe on close) rather than with the library's manager,
so renewal and re-subscription follow our own timing; :meth:`EventSubscription.events`
re-subscribes, with backoff, when the camera drops the subscription.

:func:`discover` sends a WS-Discovery ``Probe`` (UDP multicast to
239.255.255.250:3702 from a chosen interface, or unicast to given targets) and
collects the ``ProbeMatches``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import socket
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlparse

import aiohttp
import zeep.exceptions
from onvif import ONVIFCamera
from onvif.exceptions import ONVIFAuthError, ONVIFError, ONVIFTimeoutError

from pipeline.errors import CameraAuthError, CameraError, CameraUnreachable, OnvifFault
from schemas import records

log = logging.getLogger(__name__)

__all__ = [
    "DeviceInfo",
    "DiscoveredDevice",
    "EventSubscription",
    "OnvifClient",
    "Profile",
    "PtzPosition",
    "discover",
    "event_kind",
    "ptz_pose",
]

T = TypeVar("T")

_TT = "{http://www.onvif.org/ver10/schema}"


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


# --------------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    manufacturer: str
    model: str
    firmware_version: str
    serial_number: str
    hardware_id: str


@dataclass(frozen=True, slots=True)
class Profile:
    """A media profile.

    :param width: encoder resolution, px (``None`` when the profile has no encoder)
    :param ptz: the profile has a PTZ configuration
    """

    token: str
    name: str
    encoding: str | None
    width: int | None
    height: int | None
    ptz: bool


@dataclass(frozen=True, slots=True)
class PtzPosition:
    """A PTZ position in ONVIF generic spaces.

    :param pan: [-1, 1]
    :param tilt: [-1, 1]
    :param zoom: [0, 1]
    :param t_ms: when it was read, local wall clock, ms UTC
    :param moving: the device's ``MoveStatus``: an axis still moving (``None``: not reported)
    """

    pan: float
    tilt: float
    zoom: float
    t_ms: int
    moving: bool | None = None

    def close_to(self, pan: float, tilt: float, zoom: float, tolerance: float = 0.01) -> bool:
        """Within ``tolerance`` (ONVIF generic units) of a position on every axis."""
        return (
            abs(self.pan - pan) <= tolerance
            and abs(self.tilt - tilt) <= tolerance
            and abs(self.zoom - zoom) <= tolerance
        )


@dataclass(frozen=True, slots=True)
class Pose:
    """A camera pose derived from PTZ: heading (degrees true), tilt below horizontal, hfov."""

    heading_deg: float
    tilt_deg: float
    hfov_deg: float


def ptz_pose(camera: Any, position: PtzPosition) -> Pose:
    """Heading, tilt and field of view of ``camera`` at ``position``, through its ``ptz`` calibration.

    The pan map gives degrees relative to the camera's configured ``heading_deg``
    (e.g. a Hikvision model: pan° = 179.87·p + 179.95); the tilt map gives the
    depression in degrees; ``zoom_hfov`` is interpolated for the field of view.
    An axis without calibration keeps the configured value.

    :param camera: a :class:`pipeline.site.CameraConfig`
    :param position: the ONVIF position

    >>> from types import SimpleNamespace as N
    >>> cal = N(pan=N(to_deg=lambda p: 179.87 * p + 179.95), tilt=None, hfov_deg=lambda z: 60 - 50 * z)
    >>> cam = N(heading_deg=0.0, tilt_deg=3.0, effective_hfov_deg=60.0, ptz=cal)
    >>> ptz_pose(cam, PtzPosition(0.5, 0.0, 1.0, 0))
    Pose(heading_deg=269.885, tilt_deg=3.0, hfov_deg=10.0)
    """
    cal = getattr(camera, "ptz", None)
    heading = float(camera.heading_deg)
    tilt = float(camera.tilt_deg)
    hfov = float(camera.effective_hfov_deg)
    if cal is not None:
        if cal.pan is not None:
            heading = heading + cal.pan.to_deg(position.pan)
        if cal.tilt is not None:
            tilt = cal.tilt.to_deg(position.tilt)
        if getattr(cal, "zoom_hfov", True):
            hfov = cal.hfov_deg(position.zoom)
    return Pose(round(heading % 360.0, 6), tilt, hfov)


# --------------------------------------------------------------------------- errors


def _fault_code(fault: zeep.exceptions.Fault) -> str:
    """The most specific code of a fault, as ``prefix:Name`` text (``ter:InvalidArgVal``)."""
    subcodes = getattr(fault, "subcodes", None) or []
    names = [getattr(q, "localname", None) or str(q) for q in subcodes]
    if names:
        prefix = (
            "ter:"
            if any("onvif.org/ver10/error" in str(getattr(q, "namespace", "")) for q in subcodes)
            else ""
        )
        return prefix + "/".join(names) if prefix else "/".join(str(n) for n in names)
    return str(fault.code or "env:Receiver")


def translate_error(exc: BaseException, where: str) -> CameraError:
    """Map a library or transport exception to the Shorewatch camera errors.

    :param where: ``host:port operation`` text for the message
    """
    if isinstance(exc, CameraError):
        return exc
    if isinstance(exc, zeep.exceptions.Fault):
        code = _fault_code(exc)
        reason = str(exc.message or "").strip()
        if "NotAuthorized" in code or "not authorized" in reason.lower():
            return CameraAuthError(f"{where}: camera refused the credentials ({code}: {reason})")
        return OnvifFault(code, f"{where}: {reason}")
    if isinstance(exc, ONVIFAuthError):
        return CameraAuthError(f"{where}: {exc}")
    if isinstance(exc, zeep.exceptions.TransportError):
        if exc.status_code == 401:
            return CameraAuthError(f"{where}: HTTP 401")
        return CameraUnreachable(f"{where}: HTTP {exc.status_code}")
    if isinstance(exc, aiohttp.ClientResponseError) and exc.status == 401:
        return CameraAuthError(f"{where}: HTTP 401")
    if isinstance(exc, (aiohttp.ClientError, OSError, TimeoutError, ONVIFTimeoutError)):
        return CameraUnreachable(f"{where}: {type(exc).__name__}: {exc}")
    if isinstance(exc, ONVIFError):
        cause = exc.__cause__ or exc.__context__
        if cause is not None and cause is not exc:
            return translate_error(cause, where)
        return CameraUnreachable(f"{where}: {exc}")
    if isinstance(exc, (zeep.exceptions.Error, ValueError)):
        return OnvifFault("shorewatch:BadResponse", f"{where}: {exc}")
    raise exc


# --------------------------------------------------------------------------- client


class OnvifClient:
    """One ONVIF device.

    :param camera_id: camera id, used in records and messages
    :param host: host or address of the device
    :param port: HTTP port of the ONVIF service
    :param user: user name
    :param password: password
    :param timeout_s: limit for each call, s
    :param precise_clock: measure the clock offset to the poll interval instead of ±0.5 s
        (costs up to about 1.2 s of polling at connect)
    :param clock_poll_s: poll interval of the precise clock measurement, s
    """

    def __init__(
        self,
        camera_id: str,
        host: str,
        port: int,
        user: str | None,
        password: str | None,
        *,
        timeout_s: float = 10.0,
        precise_clock: bool = True,
        clock_poll_s: float = 0.02,
    ):
        self.camera_id = camera_id
        self.precise_clock = precise_clock
        self.clock_poll_s = clock_poll_s
        self.host, self.port = host, int(port)
        self.user, self.password = user, password
        self.timeout_s = timeout_s
        self.clock_offset_ms: int | None = None
        self.clock_offset_bound_ms: int | None = None
        self._cam: ONVIFCamera | None = None
        self._profiles: list[Profile] | None = None

    @classmethod
    def for_camera(cls, camera: Any, **kwargs: Any) -> OnvifClient:
        """A client for a :class:`pipeline.site.CameraConfig` with an ``onvif`` section.

        :raises ConfigError: when credentials are missing from the environment
        """
        user, password = camera.credentials()
        return cls(camera.id, camera.onvif.host, camera.onvif.port, user, password, **kwargs)

    @property
    def where(self) -> str:
        return f"camera {self.camera_id} ({self.host}:{self.port})"

    async def _call(self, awaitable: Awaitable[T], operation: str) -> T:
        try:
            return await asyncio.wait_for(awaitable, self.timeout_s)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - translated or re-raised
            raise translate_error(exc, f"{self.where} {operation}") from exc

    async def connect(self) -> OnvifClient:
        """Measure the clock offset, then read the service addresses (``GetServices``).

        :raises CameraUnreachable, CameraAuthError, OnvifFault:
        """
        self._cam = ONVIFCamera(self.host, self.port, self.user, self.password, adjust_time=True)
        try:
            await self.measure_clock_offset()
            await self._call(self._cam.update_xaddrs(), "GetServices")
        except BaseException:
            await self.close()
            raise
        return self

    async def close(self) -> None:
        """Release HTTP sessions (bounded by the call timeout: a shutdown never hangs on a
        device that stopped answering)."""
        if self._cam is not None:
            cam, self._cam = self._cam, None
            try:
                await asyncio.wait_for(cam.close(), self.timeout_s)
            except Exception:  # noqa: BLE001 - closing is best effort
                log.debug("%s: close failed", self.where, exc_info=True)

    async def __aenter__(self) -> OnvifClient:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def camera(self) -> ONVIFCamera:
        if self._cam is None:
            raise CameraError(f"{self.where}: not connected")
        return self._cam

    async def _camera_second(self, devicemgmt: Any) -> tuple[float, float, float]:
        """One ``GetSystemDateAndTime``: ``(local send time, local receive time, camera time)``,
        times in s since the epoch; the camera's is whole seconds."""
        t0 = time.time()
        try:
            answer = await self._call(
                devicemgmt.authless_GetSystemDateAndTime(), "GetSystemDateAndTime"
            )
        except CameraAuthError:
            # ONVIF says this call needs no authentication; some devices want it anyway.
            t0 = time.time()
            answer = await self._call(devicemgmt.GetSystemDateAndTime(), "GetSystemDateAndTime")
        t1 = time.time()
        utc = answer.UTCDateTime
        if utc is None:
            raise OnvifFault("shorewatch:NoUTCDateTime", f"{self.where}: no UTCDateTime in answer")
        cam_t = dt.datetime(
            utc.Date.Year,
            utc.Date.Month,
            utc.Date.Day,
            utc.Time.Hour,
            utc.Time.Minute,
            utc.Time.Second,
            tzinfo=dt.UTC,
        ).timestamp()
        return t0, t1, cam_t

    async def measure_clock_offset(self) -> int:
        """Camera clock minus local clock, ms, from ``GetSystemDateAndTime``.

        ONVIF reports whole seconds. With ``precise_clock`` the device is asked
        every ``clock_poll_s`` until its second changes (at most about 1.2 s): the
        change happened between two answers, which bounds the offset to the poll
        interval plus one round trip. Otherwise one answer gives it to about ±0.5 s.

        :returns: the offset, also kept in :attr:`clock_offset_ms`; the bound of its
            error is :attr:`clock_offset_bound_ms`
        """
        devicemgmt = await self._call(self.camera.create_devicemgmt_service(), "connect")
        s0, r0, c0 = await self._camera_second(devicemgmt)
        # One answer: the camera read its clock somewhere in [c0, c0 + 1) at about the midpoint.
        offset_s = c0 + 0.5 - (s0 + r0) / 2
        bound_s = 0.5 + (r0 - s0) / 2
        if self.precise_clock:
            prev_s, prev_r, prev_c = s0, r0, c0
            deadline = time.monotonic() + 1.2
            while time.monotonic() < deadline:
                await asyncio.sleep(self.clock_poll_s)
                s, r, c = await self._camera_second(devicemgmt)
                if c != prev_c:
                    # The camera's second turned to c between its two reads: locally after
                    # the previous request was sent and before this answer came back.
                    turn_local_s = (prev_r + s) / 2
                    offset_s = c - turn_local_s
                    # The turn was after the previous read (>= prev_s) and before this one (<= r).
                    bound_s = max(turn_local_s - prev_s, r - turn_local_s)
                    break
                prev_s, prev_r, prev_c = s, r, c
        self.clock_offset_ms = round(offset_s * 1000)
        self.clock_offset_bound_ms = round(bound_s * 1000) + 1
        return self.clock_offset_ms

    async def device_info(self) -> DeviceInfo:
        devicemgmt = await self._call(self.camera.create_devicemgmt_service(), "connect")
        info = await self._call(devicemgmt.GetDeviceInformation(), "GetDeviceInformation")
        return DeviceInfo(
            str(info.Manufacturer or ""),
            str(info.Model or ""),
            str(info.FirmwareVersion or ""),
            str(info.SerialNumber or ""),
            str(info.HardwareId or ""),
        )

    def services(self) -> dict[str, str]:
        """Service namespace -> address, as read by :meth:`connect`."""
        return dict(self.camera.xaddrs)

    async def profiles(self) -> list[Profile]:
        media = await self._call(self.camera.create_media_service(), "connect")
        answer = await self._call(media.GetProfiles(), "GetProfiles")
        out = []
        for p in answer or []:
            enc = getattr(p, "VideoEncoderConfiguration", None)
            res = getattr(enc, "Resolution", None) if enc is not None else None
            out.append(
                Profile(
                    token=str(p.token),
                    name=str(getattr(p, "Name", "") or ""),
                    encoding=str(enc.Encoding) if enc is not None and enc.Encoding else None,
                    width=int(res.Width) if res is not None else None,
                    height=int(res.Height) if res is not None else None,
                    ptz=getattr(p, "PTZConfiguration", None) is not None,
                )
            )
        self._profiles = out
        return out

    async def _profile_token(self, token: str | None) -> str:
        if token is not None:
            return token
        profiles = self._profiles if self._profiles is not None else await self.profiles()
        if not profiles:
            raise OnvifFault("ter:NoProfile", f"{self.where}: the device has no media profile")
        return profiles[0].token

    async def stream_uri(self, profile_token: str | None = None) -> str:
        """RTSP URI of a profile (default: the first), over RTP/RTSP/TCP."""
        token = await self._profile_token(profile_token)
        media = await self._call(self.camera.create_media_service(), "connect")
        answer = await self._call(
            media.GetStreamUri(
                {
                    "StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}},
                    "ProfileToken": token,
                }
            ),
            "GetStreamUri",
        )
        return str(answer.Uri)

    async def snapshot_uri(self, profile_token: str | None = None) -> str:
        token = await self._profile_token(profile_token)
        media = await self._call(self.camera.create_media_service(), "connect")
        answer = await self._call(media.GetSnapshotUri({"ProfileToken": token}), "GetSnapshotUri")
        return str(answer.Uri)

    async def snapshot_jpeg(self, profile_token: str | None = None) -> bytes:
        """One JPEG from the snapshot URI (HTTP digest authentication, then basic).

        :raises CameraError: when the device has no snapshot or refuses it
        """
        token = await self._profile_token(profile_token)
        image = None
        for basic in (False, True):
            try:
                image = await self._call(
                    self.camera.get_snapshot(token, basic_auth=basic), "snapshot"
                )
            except CameraAuthError:
                if basic:
                    raise
                continue
            if image:
                break
        if not image:
            raise CameraError(f"{self.where}: no snapshot available")
        return image

    async def _ptz_service(self) -> Any:
        return await self._call(self.camera.create_ptz_service(), "connect")

    async def ptz_status(self, profile_token: str | None = None) -> PtzPosition:
        """The current PTZ position and whether it is moving (``GetStatus``)."""
        token = await self._profile_token(profile_token)
        ptz = await self._ptz_service()
        status = await self._call(ptz.GetStatus({"ProfileToken": token}), "GetStatus")
        pos = getattr(status, "Position", None)
        if pos is None or pos.PanTilt is None:
            raise OnvifFault("shorewatch:NoPosition", f"{self.where}: GetStatus has no position")
        zoom = pos.Zoom.x if pos.Zoom is not None else 0.0
        move = getattr(status, "MoveStatus", None)
        moving = None
        if move is not None:
            axes = [str(getattr(move, a, "") or "").upper() for a in ("PanTilt", "Zoom")]
            moving = any(a == "MOVING" for a in axes)
        return PtzPosition(
            float(pos.PanTilt.x), float(pos.PanTilt.y), float(zoom), _wall_ms(), moving
        )

    async def absolute_move(
        self,
        pan: float,
        tilt: float,
        zoom: float | None = None,
        *,
        speed: float | None = None,
        profile_token: str | None = None,
    ) -> None:
        """``AbsoluteMove`` to a position in the generic spaces (pan, tilt ``[-1, 1]``, zoom
        ``[0, 1]``; ``None`` zoom: unchanged). Returns when the device accepted the move, not
        when it got there (:meth:`wait_for_position`).

        :param speed: fraction of the device's top speed ``(0, 1]`` (``None``: its default)
        :raises ValueError: a value outside its space
        """
        if not (-1.0 <= pan <= 1.0 and -1.0 <= tilt <= 1.0) or (
            zoom is not None and not 0.0 <= zoom <= 1.0
        ):
            raise ValueError(f"PTZ position out of range: pan {pan}, tilt {tilt}, zoom {zoom}")
        token = await self._profile_token(profile_token)
        ptz = await self._ptz_service()
        position: dict[str, Any] = {"PanTilt": {"x": float(pan), "y": float(tilt)}}
        if zoom is not None:
            position["Zoom"] = {"x": float(zoom)}
        request: dict[str, Any] = {"ProfileToken": token, "Position": position}
        if speed is not None:
            request["Speed"] = {"PanTilt": {"x": speed, "y": speed}, "Zoom": {"x": speed}}
        await self._call(ptz.AbsoluteMove(request), "AbsoluteMove")

    async def continuous_move(
        self,
        pan_speed: float,
        tilt_speed: float,
        zoom_speed: float = 0.0,
        *,
        timeout_s: float | None = None,
        profile_token: str | None = None,
    ) -> None:
        """``ContinuousMove`` at velocities in ``[-1, 1]`` until :meth:`stop` (or
        ``timeout_s``, which the device enforces)."""
        token = await self._profile_token(profile_token)
        ptz = await self._ptz_service()
        request: dict[str, Any] = {
            "ProfileToken": token,
            "Velocity": {"PanTilt": {"x": pan_speed, "y": tilt_speed}, "Zoom": {"x": zoom_speed}},
        }
        if timeout_s is not None:
            request["Timeout"] = dt.timedelta(seconds=timeout_s)
        await self._call(ptz.ContinuousMove(request), "ContinuousMove")

    async def stop(self, *, profile_token: str | None = None) -> None:
        """``Stop`` every pan, tilt and zoom movement."""
        token = await self._profile_token(profile_token)
        ptz = await self._ptz_service()
        await self._call(ptz.Stop({"ProfileToken": token, "PanTilt": True, "Zoom": True}), "Stop")

    async def presets(self, profile_token: str | None = None) -> dict[str, str]:
        """The device's presets, token -> name (``GetPresets``)."""
        token = await self._profile_token(profile_token)
        ptz = await self._ptz_service()
        answer = await self._call(ptz.GetPresets({"ProfileToken": token}), "GetPresets")
        return {str(p.token): str(getattr(p, "Name", "") or "") for p in answer or []}

    async def goto_preset(self, preset_token: str, *, profile_token: str | None = None) -> None:
        """``GotoPreset``: move to a stored preset."""
        token = await self._profile_token(profile_token)
        ptz = await self._ptz_service()
        await self._call(
            ptz.GotoPreset({"ProfileToken": token, "PresetToken": preset_token}), "GotoPreset"
        )

    async def goto_home(self, *, profile_token: str | None = None) -> None:
        """``GotoHomePosition``: back to the camera's home position."""
        token = await self._profile_token(profile_token)
        ptz = await self._ptz_service()
        await self._call(ptz.GotoHomePosition({"ProfileToken": token}), "GotoHomePosition")

    async def wait_for_position(
        self,
        pan: float,
        tilt: float,
        zoom: float,
        *,
        tolerance: float = 0.01,
        timeout_s: float = 15.0,
        poll_s: float = 0.05,
        profile_token: str | None = None,
    ) -> PtzPosition:
        """Poll ``GetStatus`` until the camera is at a position (within ``tolerance``) and no
        longer moving.

        :raises CameraError: not there after ``timeout_s``
        :raises CameraUnreachable: the device stopped answering
        """
        deadline = time.monotonic() + timeout_s
        while True:
            pos = await self.ptz_status(profile_token)
            if pos.close_to(pan, tilt, zoom, tolerance) and not pos.moving:
                return pos
            if time.monotonic() >= deadline:
                raise CameraError(
                    f"{self.where}: PTZ at ({pos.pan:.3f}, {pos.tilt:.3f}, {pos.zoom:.3f}) after "
                    f"{timeout_s:g} s, not at ({pan:.3f}, {tilt:.3f}, {zoom:.3f})"
                )
            await asyncio.sleep(poll_s)

    def subscription(self, **kwargs: Any) -> EventSubscription:
        """A PullPoint subscription on this device (not created yet)."""
        return EventSubscription(self, **kwargs)


# --------------------------------------------------------------------------- events


_KINDS = (
    ("LineDetector/Crossed", "line_crossed"),
    ("LineCrossing", "line_crossed"),
    ("FieldDetector/ObjectsInside", "field_inside"),
    ("Intrusion", "field_inside"),
    ("MotionAlarm", "motion"),
    ("CellMotionDetector", "motion"),
    ("MotionDetect", "motion"),
    ("Object", "object"),
    ("Vehicle", "object"),
    ("Human", "object"),
    ("People", "object"),
    ("Boat", "object"),
)
_RULE_KEYS = ("Rule", "RuleName", "rule")
_STATE_KEYS = ("IsInside", "IsMotion", "State", "LogicalState", "Value", "Active")


def event_kind(topic: str) -> str:
    """Normalised kind of an ONVIF topic.

    >>> event_kind("tns1:RuleEngine/LineDetector/Crossed")
    'line_crossed'
    >>> event_kind("tns1:RuleEngine/tnshik:ObjectDetector/Boat")
    'object'
    """
    for needle, kind in _KINDS:
        if needle.lower() in topic.lower():
            return kind
    return "other"


def _simple_items_xml(message: Any, part: str) -> dict[str, str]:
    items: dict[str, str] = {}
    for holder in message:
        if str(holder.tag).rsplit("}", 1)[-1] != part:
            continue
        for item in holder.iter():
            if str(item.tag).rsplit("}", 1)[-1] == "SimpleItem" and item.get("Name") is not None:
                items[item.get("Name")] = item.get("Value", "")
    return items


def _simple_items_obj(holder: Any) -> dict[str, str]:
    items: dict[str, str] = {}
    if holder is None:
        return items
    for item in getattr(holder, "SimpleItem", None) or []:
        if getattr(item, "Name", None) is not None:
            items[str(item.Name)] = "" if item.Value is None else str(item.Value)
    return items


def _message_fields(message: Any) -> tuple[int | None, str | None, dict[str, str], dict[str, str]]:
    """``(utc_ms, property_operation, source items, data items)`` of a ``tt:Message``.

    zeep hands the message over either as an XML element (unknown type) or as a
    typed object (when the ONVIF schema is bound); both are accepted.
    """
    if hasattr(message, "tag") and hasattr(message, "get"):
        utc = message.get("UtcTime")
        return (
            _parse_time_ms(utc) if utc else None,
            message.get("PropertyOperation"),
            _simple_items_xml(message, "Source"),
            _simple_items_xml(message, "Data"),
        )
    utc = getattr(message, "UtcTime", None)
    if isinstance(utc, dt.datetime):
        utc_ms = round((utc if utc.tzinfo else utc.replace(tzinfo=dt.UTC)).timestamp() * 1000)
    elif utc:
        utc_ms = _parse_time_ms(str(utc))
    else:
        utc_ms = None
    op = getattr(message, "PropertyOperation", None)
    return (
        utc_ms,
        None if op is None else str(op),
        _simple_items_obj(getattr(message, "Source", None)),
        _simple_items_obj(getattr(message, "Data", None)),
    )


def _parse_time_ms(text: str) -> int:
    t = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return round(t.timestamp() * 1000)


def parse_notification(
    camera_id: str, topic: str, message: Any, clock_offset_ms: int | None, rx_t_ms: int
) -> records.CameraEvent:
    """Turn one ``wsnt:NotificationMessage`` into a :class:`~schemas.records.CameraEvent`.

    :param topic: the topic text, e.g. ``tns1:VideoSource/MotionAlarm``
    :param message: the ``tt:Message``, as an XML element or a zeep object
    :param clock_offset_ms: camera minus local clock, ms, subtracted from ``UtcTime``
    :param rx_t_ms: local receive time, used when the message has no ``UtcTime``
    """
    utc_ms, op, source, data = _message_fields(message)
    t_ms = utc_ms - (clock_offset_ms or 0) if utc_ms is not None else rx_t_ms
    rule = next((source[k] for k in _RULE_KEYS if k in source), None)
    if rule is None:
        rule = next((data[k] for k in _RULE_KEYS if k in data), None)
    state = None
    for key in _STATE_KEYS:
        value = data.get(key)
        if value is not None and value.lower() in ("true", "false", "1", "0"):
            state = value.lower() in ("true", "1")
            break
    items = {
        **{f"source.{k}": v for k, v in source.items()},
        **{f"data.{k}": v for k, v in data.items()},
    }
    if op:
        items["PropertyOperation"] = op
    return records.CameraEvent(
        camera_id=camera_id,
        t_ms=t_ms,
        topic=topic.strip(),
        kind=event_kind(topic),  # type: ignore[arg-type]
        rule=rule,
        state=state,
        items=items,
    )


class EventSubscription:
    """A PullPoint subscription: create, pull, renew, unsubscribe.

    :param client: a connected :class:`OnvifClient`
    :param termination_s: requested subscription lifetime, s; renewed at half of it
    :param pull_timeout_s: long-poll time of one ``PullMessages``, s
    :param message_limit: most messages per pull
    """

    def __init__(
        self,
        client: OnvifClient,
        *,
        termination_s: float = 60.0,
        pull_timeout_s: float = 2.0,
        message_limit: int = 50,
        rng: random.Random | None = None,
    ):
        self.client = client
        self.termination_s = termination_s
        self.pull_timeout_s = pull_timeout_s
        self.message_limit = message_limit
        self.address: str | None = None
        self.subscribed_count = 0
        self.renew_count = 0
        self._renew_due = 0.0
        self._pullpoint: Any = None
        self._manager: Any = None
        self._rng = rng or random.Random()

    @property
    def active(self) -> bool:
        return self.address is not None

    async def create(self) -> None:
        """``CreatePullPointSubscription`` and bind the pull and manager services to its address."""
        c = self.client
        events = await c._call(c.camera.create_events_service(), "connect")
        answer = await c._call(
            events.CreatePullPointSubscription(
                {"InitialTerminationTime": f"PT{int(self.termination_s)}S"}
            ),
            "CreatePullPointSubscription",
        )
        address = answer.SubscriptionReference.Address._value_1
        ns = "http://www.onvif.org/ver10/events/wsdl/PullPointSubscription"
        c.camera.xaddrs[ns] = address
        self._manager = await c._call(
            c.camera.create_subscription_service("PullPointSubscription"), "connect"
        )
        self._pullpoint = await c._call(c.camera.create_pullpoint_service(), "connect")
        self.address = address
        self.subscribed_count += 1
        self._renew_due = time.monotonic() + self.termination_s / 2
        log.info("%s: subscribed to events at %s", c.where, address)

    async def pull(self) -> list[records.CameraEvent]:
        """One ``PullMessages``; renews first when half the lifetime has passed.

        :raises OnvifFault: when the device no longer knows the subscription (and others)
        """
        if self._pullpoint is None:
            raise CameraError(f"{self.client.where}: no subscription")
        if time.monotonic() >= self._renew_due:
            await self.renew()
        c = self.client
        answer = await c._call(
            self._pullpoint.PullMessages(
                {"Timeout": f"PT{self.pull_timeout_s:g}S", "MessageLimit": self.message_limit}
            ),
            "PullMessages",
        )
        rx = _wall_ms()
        out = []
        for msg in answer.NotificationMessage or []:
            topic_el = msg.Topic
            topic = str(getattr(topic_el, "_value_1", topic_el) or "")
            body = getattr(msg.Message, "_value_1", None)
            if body is None:
                continue
            try:
                out.append(parse_notification(c.camera_id, topic, body, c.clock_offset_ms, rx))
            except (ValueError, TypeError) as exc:
                log.warning("%s: unreadable event %s: %s", c.where, topic, exc)
        return out

    async def renew(self) -> None:
        """``Renew`` for another ``termination_s``."""
        c = self.client
        await c._call(
            self._manager.Renew({"TerminationTime": f"PT{int(self.termination_s)}S"}), "Renew"
        )
        self.renew_count += 1
        self._renew_due = time.monotonic() + self.termination_s / 2

    async def unsubscribe(self) -> None:
        """``Unsubscribe``; errors are logged, never raised (the camera may be gone)."""
        if self._manager is None:
            return
        manager, self._manager, self._pullpoint, self.address = self._manager, None, None, None
        try:
            await self.client._call(manager.Unsubscribe(), "Unsubscribe")
        except CameraError as exc:
            log.info("%s: unsubscribe failed: %s", self.client.where, exc)

    async def events(
        self, *, backoff_base_s: float = 0.5, backoff_cap_s: float = 30.0
    ) -> AsyncIterator[records.CameraEvent]:
        """Events for ever: subscribe, pull, re-subscribe after any failure (with backoff).

        Authentication errors end the iteration (retrying cannot fix a wrong password).
        Unsubscribes when the consumer stops iterating or the task is cancelled.
        """
        attempt = 0
        try:
            while True:
                try:
                    if not self.active:
                        await self.create()
                    batch = await self.pull()
                    attempt = 0
                except CameraAuthError:
                    raise
                except CameraError as exc:
                    log.warning("%s: event subscription lost: %s", self.client.where, exc)
                    self.address = None
                    self._pullpoint = None
                    delay = min(backoff_cap_s, backoff_base_s * 2**attempt)
                    attempt += 1
                    await asyncio.sleep(self._rng.uniform(delay / 2, delay))
                    continue
                for event in batch:
                    yield event
        finally:
            await self.unsubscribe()


# --------------------------------------------------------------------------- discovery

WS_DISCOVERY_ADDR = ("239.255.255.250", 3702)

_PROBE = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:w="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
    'xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" '
    'xmlns:dn="http://www.onvif.org/ver10/network/wsdl">'
    "<e:Header><w:MessageID>{mid}</w:MessageID>"
    '<w:To e:mustUnderstand="true">urn:schemas-xmlsoap-org:ws:2005:04:discovery</w:To>'
    '<w:Action e:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</w:Action>'
    "</e:Header><e:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></e:Body>"
    "</e:Envelope>"
)
_D = "{http://schemas.xmlsoap.org/ws/2005/04/discovery}"
_A = "{http://schemas.xmlsoap.org/ws/2004/08/addressing}"


@dataclass
class DiscoveredDevice:
    """One ONVIF device that answered a Probe.

    :param xaddrs: device service URLs
    :param scopes: ONVIF scopes (``onvif://www.onvif.org/name/...``)
    """

    endpoint: str
    xaddrs: list[str]
    scopes: list[str] = field(default_factory=list)
    types: str = ""

    def scope(self, kind: str) -> str | None:
        """The value of a scope kind (``name``, ``hardware``, ``location``), URL-decoded."""
        from urllib.parse import unquote

        prefix = f"onvif://www.onvif.org/{kind}/"
        for s in self.scopes:
            if s.startswith(prefix):
                return unquote(s[len(prefix) :])
        return None

    @property
    def host(self) -> str | None:
        return urlparse(self.xaddrs[0]).hostname if self.xaddrs else None

    @property
    def port(self) -> int:
        if not self.xaddrs:
            return 80
        u = urlparse(self.xaddrs[0])
        return u.port or (443 if u.scheme == "https" else 80)

    def cameras_yaml(self, camera_id: str) -> str:
        """A ``cameras.yaml`` entry skeleton: what is known filled in, the rest to measure."""
        env = camera_id.upper().replace("-", "_")
        name = self.scope("name") or self.scope("hardware") or ""
        return "\n".join(
            [
                f"  - id: {camera_id}",
                f"    name: {name!r}  # from the ONVIF scopes; {self.endpoint}",
                "    lon: null        # TODO: camera position, WGS84 degrees",
                "    lat: null",
                "    height_m: null   # above sea level",
                "    heading_deg: null  # optical axis, degrees true",
                "    tilt_deg: null   # below the horizontal",
                "    hfov_deg: null   # or fx, fy, cx, cy",
                "    image_width: null  # `shorewatch cameras probe` reads these from the device",
                "    image_height: null",
                "    rtsp_url: null   # `shorewatch cameras probe` (GetStreamUri, needs credentials)",
                f"    onvif: {{host: {self.host}, port: {self.port}, "
                f"user_env: {env}_USER, password_env: {env}_PASSWORD}}",
            ]
        )


def _parse_probe_matches(data: bytes) -> list[DiscoveredDevice]:
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        return []
    out = []
    for match in root.iter(f"{_D}ProbeMatch"):
        endpoint = match.findtext(f"{_A}EndpointReference/{_A}Address", "") or ""
        xaddrs = (match.findtext(f"{_D}XAddrs", "") or "").split()
        scopes = (match.findtext(f"{_D}Scopes", "") or "").split()
        types = match.findtext(f"{_D}Types", "") or ""
        out.append(DiscoveredDevice(endpoint.strip(), xaddrs, scopes, types.strip()))
    return out


async def discover(
    timeout_s: float = 3.0,
    interface: str | None = None,
    targets: Iterable[tuple[str, int]] | None = None,
    port: int = WS_DISCOVERY_ADDR[1],
) -> list[DiscoveredDevice]:
    """Find ONVIF devices with a WS-Discovery Probe.

    :param timeout_s: how long to collect answers, s
    :param interface: local IPv4 address to send the multicast from (and bind to)
    :param targets: unicast ``(host, port)`` destinations instead of the multicast group
    :param port: UDP port of the multicast group (3702 in ONVIF)
    :returns: one entry per endpoint, in order of first answer
    """
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    sock.setblocking(False)
    sock.bind((interface or "0.0.0.0", 0))
    if interface:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(interface))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
    probe = _PROBE.format(mid=f"urn:uuid:{uuid.uuid4()}").encode()
    found: dict[str, DiscoveredDevice] = {}
    try:
        for target in list(targets) if targets else [(WS_DISCOVERY_ADDR[0], port)]:
            try:
                await loop.sock_sendto(sock, probe, target)
            except OSError as exc:
                log.warning("WS-Discovery probe to %s:%s failed: %s", *target, exc)
        deadline = loop.time() + timeout_s
        while (remaining := deadline - loop.time()) > 0:
            try:
                data, _addr = await asyncio.wait_for(loop.sock_recvfrom(sock, 65535), remaining)
            except TimeoutError:
                break
            for device in _parse_probe_matches(data):
                key = device.endpoint or " ".join(device.xaddrs)
                found.setdefault(key, device)
    finally:
        sock.close()
    return list(found.values())


def _parse_target(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host:
        return text, WS_DISCOVERY_ADDR[1]
    return host, int(port)


def cmd_discover(args: Any) -> int:
    targets = [_parse_target(t) for t in args.target] if args.target else None
    devices = asyncio.run(discover(args.timeout, args.interface, targets, args.port))
    if not devices:
        print(f"no ONVIF device answered within {args.timeout:g} s")
        return 0
    print(f"# {len(devices)} ONVIF device(s); add to cameras.yaml under `cameras:`")
    for i, device in enumerate(devices, 1):
        print(f"# {device.xaddrs[0] if device.xaddrs else '?'}  scopes: {' '.join(device.scopes)}")
        print(device.cameras_yaml(f"cam-{i:02d}"))
    return 0


async def probe(client: OnvifClient) -> dict[str, Any]:
    """What a ``cameras.yaml`` entry needs from a reachable device, as a dict.

    Device information, profiles (the first one gives the stream and the image size),
    stream URI, clock offset, and the PTZ position when the device has PTZ. Parts the
    device does not support are reported as ``None`` with the reason under ``problems``.
    """
    out: dict[str, Any] = {"problems": {}}
    info = await client.device_info()
    out["device"] = {
        "manufacturer": info.manufacturer,
        "model": info.model,
        "firmware": info.firmware_version,
        "serial": info.serial_number,
    }
    out["clock_offset_ms"] = client.clock_offset_ms
    profiles = await client.profiles()
    out["profiles"] = [
        {
            "token": p.token,
            "name": p.name,
            "encoding": p.encoding,
            "width": p.width,
            "height": p.height,
            "ptz": p.ptz,
        }
        for p in profiles
    ]
    first = profiles[0] if profiles else None
    out["image_width"] = first.width if first else None
    out["image_height"] = first.height if first else None
    for key, call in (("rtsp_url", client.stream_uri), ("snapshot_uri", client.snapshot_uri)):
        try:
            out[key] = await call()
        except CameraError as exc:
            out[key] = None
            out["problems"][key] = str(exc)
    out["ptz_position"] = None
    if PTZ_SERVICE in client.services() and first is not None and first.ptz:
        try:
            pos = await client.ptz_status(first.token)
            out["ptz_position"] = {"pan": pos.pan, "tilt": pos.tilt, "zoom": pos.zoom}
        except CameraError as exc:
            out["problems"]["ptz_position"] = str(exc)
    return out


PTZ_SERVICE = "http://www.onvif.org/ver20/ptz/wsdl"


def cmd_probe(args: Any) -> int:
    import json
    import os

    from pipeline.errors import ConfigError

    missing = [n for n in (args.user_env, args.password_env) if n not in os.environ]
    if missing:
        raise ConfigError(f"environment variable {' and '.join(missing)} not set")
    client = OnvifClient(
        args.id,
        args.host,
        args.port,
        os.environ[args.user_env],
        os.environ[args.password_env],
        timeout_s=args.timeout,
    )

    async def run() -> dict[str, Any]:
        async with client:
            return await probe(client)

    result = asyncio.run(run())
    if args.json:
        print(json.dumps(result))
        return 0
    d = result["device"]
    print(f"# {d['manufacturer']} {d['model']} (firmware {d['firmware']}, serial {d['serial']})")
    print(f"# camera clock minus local clock: {result['clock_offset_ms']} ms")
    for prof in result["profiles"]:
        print(
            f"# profile {prof['token']}: {prof['encoding']} {prof['width']}x{prof['height']}"
            + (" PTZ" if prof["ptz"] else "")
        )
    if result["ptz_position"]:
        print(f"# PTZ position now: {result['ptz_position']} (calibrate `ptz:` from these)")
    for key, problem in result["problems"].items():
        print(f"# {key}: {problem}")
    print(f"  - id: {args.id}")
    print(f"    image_width: {result['image_width']}")
    print(f"    image_height: {result['image_height']}")
    print(f"    rtsp_url: {result['rtsp_url']}")
    print(
        f"    onvif: {{host: {args.host}, port: {args.port}, user_env: {args.user_env}, "
        f"password_env: {args.password_env}}}"
    )
    return 0
