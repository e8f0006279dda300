"""A protocol-level ONVIF device for the connector tests: real HTTP, SOAP 1.2, WS-Security.

It implements, on 127.0.0.1 only, what a real PTZ camera with analytics answers:

- device service: ``GetSystemDateAndTime`` (without authentication, as ONVIF
  requires; the clock can be skewed on purpose), ``GetServices``,
  ``GetDeviceInformation``;
- media service: ``GetProfiles``, ``GetStreamUri``, ``GetSnapshotUri``;
- PTZ service: ``GetStatus`` (pan/tilt in [-1, 1], zoom in [0, 1], ``MoveStatus``),
  ``AbsoluteMove``, ``ContinuousMove``, ``Stop``, ``GetPresets``, ``GotoPreset``,
  ``GotoHomePosition``: moves take time (each axis travels at most ``*_speed`` generic
  units per second), and ``GetStatus`` reports where the head is on the way and ``MOVING``
  until it got there;
- ``GET /snapshot.jpg`` (HTTP basic authentication): a JPEG; each snapshot is logged with
  the pose it was taken at (:attr:`OnvifDevice.snapshots`);
- event service: ``CreatePullPointSubscription``; on each subscription address
  ``PullMessages`` (long poll, returns scripted events), ``Renew``, ``Unsubscribe``.

Every request except ``GetSystemDateAndTime`` must carry a WS-Security
``UsernameToken`` with a ``PasswordDigest`` (Base64(SHA-1(nonce + created +
password))) whose ``Created`` is within 5 minutes of the device's (skewed)
clock; otherwise the answer is a SOAP fault ``env:Sender / ter:NotAuthorized``
with HTTP 400. Tests can also make an operation answer with a fault
(:meth:`OnvifDevice.fail_next`) and drop every subscription
(:meth:`OnvifDevice.drop_subscriptions`), after which pulls on the old address
get a ``ResourceUnknown`` fault.

A WS-Discovery responder answers ``Probe`` messages with a ``ProbeMatches`` that
points at the device service: by unicast on 127.0.0.1, and optionally on the
multicast group 239.255.255.250 joined on the loopback interface.

Use it in-process (``await OnvifDevice(...).start()``) or from the command line::

    python tests/peers/onvif_device.py --port 8000 --user admin --password secret
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import itertools
import re
import socket
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from aiohttp import web

NS = {
    "env": "http://www.w3.org/2003/05/soap-envelope",
    "wsse": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd",
    "wsu": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd",
    "wsa": "http://www.w3.org/2005/08/addressing",
    "wsnt": "http://docs.oasis-open.org/wsn/b-2",
    "tds": "http://www.onvif.org/ver10/device/wsdl",
    "trt": "http://www.onvif.org/ver10/media/wsdl",
    "tptz": "http://www.onvif.org/ver20/ptz/wsdl",
    "tev": "http://www.onvif.org/ver10/events/wsdl",
    "tt": "http://www.onvif.org/ver10/schema",
    "tns1": "http://www.onvif.org/ver10/topics",
    "ter": "http://www.onvif.org/ver10/error",
    "d": "http://schemas.xmlsoap.org/ws/2005/04/discovery",
    "wsa04": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "dn": "http://www.onvif.org/ver10/network/wsdl",
}
XMLNS = " ".join(f'xmlns:{k}="{v}"' for k, v in NS.items())
MAX_SKEW_S = 300
WS_DISCOVERY_GROUP = "239.255.255.250"
CONCRETE_SET = "http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet"


def iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def envelope(body: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><env:Envelope {XMLNS}><env:Body>{body}</env:Body></env:Envelope>'


def fault_xml(code: str, subcode: str, reason: str) -> str:
    """A SOAP 1.2 fault; ``subcode`` ``a/b`` nests ``b`` inside ``a`` as ONVIF does."""
    subs = [c for c in subcode.split("/") if c]
    nested = "".join(
        f"<env:Subcode><env:Value>{c}</env:Value>" for c in subs
    ) + "</env:Subcode>" * len(subs)
    return envelope(
        f"<env:Fault><env:Code><env:Value>env:{code}</env:Value>{nested}</env:Code>"
        f'<env:Reason><env:Text xml:lang="en">{escape(reason)}</env:Text></env:Reason></env:Fault>'
    )


class SoapFault(Exception):
    def __init__(self, subcode: str, reason: str, code: str = "Sender", http_status: int = 400):
        self.code, self.subcode, self.reason, self.http_status = code, subcode, reason, http_status
        super().__init__(f"{subcode}: {reason}")


@dataclass
class ScriptedEvent:
    """One analytics event the device will deliver through PullMessages.

    :param topic: ONVIF topic, e.g. ``tns1:RuleEngine/LineDetector/Crossed``
    :param source: source simple items (``Rule``, ``VideoSourceConfigurationToken`` ...)
    :param data: data simple items (``ObjectId``, ``IsMotion``, ``IsInside`` ...)
    :param utc_time: event time on the *device* clock; default: device "now"
    """

    topic: str
    source: dict[str, str] = field(default_factory=dict)
    data: dict[str, str] = field(default_factory=dict)
    utc_time: dt.datetime | None = None
    property_operation: str = "Changed"

    def to_xml(self, when: dt.datetime) -> str:
        def items(values: dict[str, str]) -> str:
            return "".join(
                f"<tt:SimpleItem Name={quoteattr(k)} Value={quoteattr(v)}/>"
                for k, v in values.items()
            )

        return (
            "<wsnt:NotificationMessage>"
            f'<wsnt:Topic Dialect="{CONCRETE_SET}">{escape(self.topic)}</wsnt:Topic>'
            f'<wsnt:Message><tt:Message UtcTime="{iso(self.utc_time or when)}" '
            f'PropertyOperation="{self.property_operation}">'
            f"<tt:Source>{items(self.source)}</tt:Source>"
            f"<tt:Data>{items(self.data)}</tt:Data>"
            "</tt:Message></wsnt:Message></wsnt:NotificationMessage>"
        )


@dataclass
class Subscription:
    sid: str
    termination: dt.datetime
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    pulls: int = 0
    renewals: int = 0


def snapshot_jpeg(pan: float, tilt: float, zoom: float) -> bytes:
    """A small JPEG whose grey level encodes the pose (a picture, not a placeholder)."""
    import cv2
    import numpy as np

    img = np.zeros((180, 320, 3), np.uint8)
    img[:90] = (200, 160, 120)  # sky
    img[90:] = (120, 80, 30)  # sea
    cv2.putText(img, f"{pan:.3f} {tilt:.3f} {zoom:.3f}", (8, 40), 0, 0.6, (255, 255, 255), 1)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


@dataclass
class _Motion:
    """A PTZ movement under way: towards ``target`` at most ``speeds`` per axis, or at
    constant ``speeds`` (velocities) until ``until`` (monotonic s), clipped to the spaces."""

    t0: float
    start: tuple[float, float, float]
    speeds: tuple[float, float, float]
    target: tuple[float, float, float] | None = None
    until: float = 0.0

    def at(self, now: float) -> tuple[float, float, float, bool]:
        lo, hi = (-1.0, -1.0, 0.0), (1.0, 1.0, 1.0)
        if self.target is not None:
            dt_s = now - self.t0
            out = []
            moving = False
            for a, b, v in zip(self.start, self.target, self.speeds, strict=True):
                step = abs(v) * dt_s
                if abs(b - a) > step:
                    out.append(a + step * (1 if b > a else -1))
                    moving = True
                else:
                    out.append(b)
            return out[0], out[1], out[2], moving
        dt_s = min(now, self.until) - self.t0
        pos = [
            min(h, max(lo_, a + v * dt_s))
            for a, v, lo_, h in zip(self.start, self.speeds, lo, hi, strict=True)
        ]
        moving = now < self.until and any(v != 0 for v in self.speeds)
        return pos[0], pos[1], pos[2], moving


class OnvifDevice:
    """The device. All state is plain attributes tests may change between calls.

    :param user: the one account's user name
    :param password: its password
    :param clock_skew_s: device clock minus true UTC, s
    :param rtsp_url: what ``GetStreamUri`` answers
    :param pan: PTZ pan in [-1, 1]; ``tilt`` in [-1, 1]; ``zoom`` in [0, 1] (also the home
        position)
    :param pan_speed: top pan speed, generic units per second (``tilt_speed``, ``zoom_speed``)
    """

    def __init__(
        self,
        user: str = "admin",
        password: str = "secret",
        *,
        clock_skew_s: float = 0.0,
        rtsp_url: str = "rtsp://127.0.0.1:8554/cam",
        pan: float = 0.0,
        tilt: float = 0.0,
        zoom: float = 0.0,
        manufacturer: str = "Shorewatch",
        model: str = "TestPTZ-1",
        pan_speed: float = 0.5,
        tilt_speed: float = 0.5,
        zoom_speed: float = 0.5,
    ):
        self.user, self.password = user, password
        self.clock_skew_s = clock_skew_s
        self.rtsp_url = rtsp_url
        self.pan, self.tilt, self.zoom = pan, tilt, zoom
        self.manufacturer, self.model = manufacturer, model
        #: top speed of each axis, generic units per second (pan, tilt, zoom)
        self.pan_speed, self.tilt_speed, self.zoom_speed = pan_speed, tilt_speed, zoom_speed
        self.home = (pan, tilt, zoom)
        self.presets: dict[str, tuple[str, float, float, float]] = {}
        self._motion: _Motion | None = None
        #: PTZ commands received: ``(operation, argument)``
        self.moves: list[tuple[str, tuple[float, ...] | str]] = []
        #: ``(pan, tilt, zoom, moving, monotonic time)`` of each snapshot served
        self.snapshots: list[tuple[float, float, float, bool, float]] = []
        self.serial = "SW-" + uuid.uuid4().hex[:8].upper()
        self.endpoint = f"urn:uuid:{uuid.uuid4()}"
        self.subscriptions: dict[str, Subscription] = {}
        self.created_subscriptions = 0
        self.unsubscribed: list[str] = []
        self.requests: list[str] = []
        self.auth_failures = 0
        self.pending_events: list[ScriptedEvent] = []
        self._faults: dict[str, SoapFault] = {}
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._mcast: asyncio.DatagramTransport | None = None
        self.port = 0
        self.discovery_port = 0
        self.multicast_port = 0

    # -- test controls --------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def now(self) -> dt.datetime:
        """The device clock (true UTC plus the skew)."""
        return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=self.clock_skew_s)

    def push_event(self, event: ScriptedEvent) -> None:
        """Deliver ``event`` to every live subscription (or to the next one created)."""
        if not self.subscriptions:
            self.pending_events.append(event)
        for sub in self.subscriptions.values():
            sub.queue.put_nowait(event)

    def fail_next(
        self, operation: str, subcode: str = "ter:InvalidArgVal", reason: str = "scripted fault"
    ) -> None:
        """Answer the next call of ``operation`` with a SOAP fault."""
        self._faults[operation] = SoapFault(subcode, reason)

    def pose(self) -> tuple[float, float, float, bool]:
        """Where the head is now: ``(pan, tilt, zoom, moving)``; a finished move is settled."""
        if self._motion is None:
            return self.pan, self.tilt, self.zoom, False
        p, t, z, moving = self._motion.at(time.monotonic())
        if not moving:
            self.pan, self.tilt, self.zoom = p, t, z
            self._motion = None
        return p, t, z, moving

    def _start(self, motion: _Motion) -> None:
        self.pan, self.tilt, self.zoom, _ = self.pose()
        self._motion = motion

    def drop_subscriptions(self) -> None:
        """Forget every subscription, as a rebooting camera does."""
        self.subscriptions.clear()

    # -- lifecycle ------------------------------------------------------------------

    async def start(
        self, port: int = 0, discovery_port: int | None = 0, multicast_port: int | None = None
    ) -> OnvifDevice:
        """Serve on 127.0.0.1.

        :param port: HTTP port (0: any free one)
        :param discovery_port: UDP port of the unicast WS-Discovery responder (``None``: none)
        :param multicast_port: also answer probes sent to 239.255.255.250 on this UDP port,
            joined on the loopback interface only (ONVIF uses 3702; tests use a free port)
        """
        app = web.Application()
        app.router.add_post("/onvif/{service}", self._handle)
        app.router.add_post("/onvif/subscription/{sid}", self._handle)
        app.router.add_get("/snapshot.jpg", self._snapshot)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        if discovery_port is not None:
            loop = asyncio.get_running_loop()
            self._udp, _ = await loop.create_datagram_endpoint(
                lambda: _DiscoveryProtocol(self), local_addr=("127.0.0.1", discovery_port)
            )
            self.discovery_port = self._udp.get_extra_info("sockname")[1]
        if multicast_port is not None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((WS_DISCOVERY_GROUP, multicast_port))  # receives this group only
            sock.setsockopt(
                socket.IPPROTO_IP,
                socket.IP_ADD_MEMBERSHIP,
                socket.inet_aton(WS_DISCOVERY_GROUP) + socket.inet_aton("127.0.0.1"),
            )
            loop = asyncio.get_running_loop()
            self._mcast, _ = await loop.create_datagram_endpoint(
                lambda: _DiscoveryProtocol(self), sock=sock
            )
            self.multicast_port = multicast_port
        return self

    async def stop(self) -> None:
        for transport in (self._udp, self._mcast):
            if transport is not None:
                transport.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- SOAP -----------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            root = ET.fromstring(raw)
            body = root.find("env:Body", NS)
            if body is None or len(body) == 0:
                raise SoapFault("ter:WellFormed", "no SOAP 1.2 body")
            op_el = body[0]
            operation = op_el.tag.rsplit("}", 1)[-1]
            self.requests.append(operation)
            if operation != "GetSystemDateAndTime":
                self._authenticate(root)
            if operation in self._faults:
                raise self._faults.pop(operation)
            sid = request.match_info.get("sid")
            answer = await self._dispatch(operation, op_el, sid)
        except SoapFault as f:
            return web.Response(
                status=f.http_status,
                body=fault_xml(f.code, f.subcode, f.reason).encode(),
                content_type="application/soap+xml",
                charset="utf-8",
            )
        except ET.ParseError as exc:
            return web.Response(
                status=400,
                body=fault_xml("Sender", "ter:WellFormed", str(exc)).encode(),
                content_type="application/soap+xml",
            )
        return web.Response(
            body=envelope(answer).encode(), content_type="application/soap+xml", charset="utf-8"
        )

    def _authenticate(self, root: ET.Element) -> None:
        token = root.find("env:Header/wsse:Security/wsse:UsernameToken", NS)
        if token is None:
            self.auth_failures += 1
            raise SoapFault("ter:NotAuthorized", "Sender not authorized: no UsernameToken")
        user = token.findtext("wsse:Username", "", NS)
        pw_el = token.find("wsse:Password", NS)
        nonce = token.findtext("wsse:Nonce", "", NS)
        created = token.findtext("wsu:Created", "", NS)
        ok = False
        if pw_el is not None and nonce and created:
            expected = base64.b64encode(
                hashlib.sha1(
                    base64.b64decode(nonce) + created.encode() + self.password.encode()
                ).digest()
            ).decode()
            ok = hmac.compare_digest(user, self.user) and hmac.compare_digest(
                expected, pw_el.text or ""
            )
            try:
                when = dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
                if when.tzinfo is None:
                    when = when.replace(tzinfo=dt.UTC)
                ok = ok and abs((when - self.now()).total_seconds()) <= MAX_SKEW_S
            except ValueError:
                ok = False
        if not ok:
            self.auth_failures += 1
            raise SoapFault("ter:NotAuthorized", "Sender not authorized")

    async def _dispatch(self, op: str, el: ET.Element, sid: str | None) -> str:
        if sid is not None:
            return await self._subscription_op(op, el, sid)
        handler = getattr(self, f"_op_{op}", None)
        if handler is None:
            raise SoapFault("ter:ActionNotSupported", f"{op} is not supported", code="Receiver")
        return handler(el)

    def _op_GetSystemDateAndTime(self, el: ET.Element) -> str:
        t = self.now()
        return (
            "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime>"
            "<tt:DateTimeType>NTP</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings>"
            "<tt:TimeZone><tt:TZ>UTC0</tt:TZ></tt:TimeZone><tt:UTCDateTime>"
            f"<tt:Time><tt:Hour>{t.hour}</tt:Hour><tt:Minute>{t.minute}</tt:Minute><tt:Second>{t.second}</tt:Second></tt:Time>"
            f"<tt:Date><tt:Year>{t.year}</tt:Year><tt:Month>{t.month}</tt:Month><tt:Day>{t.day}</tt:Day></tt:Date>"
            "</tt:UTCDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>"
        )

    def _op_GetServices(self, el: ET.Element) -> str:
        services = [
            ("http://www.onvif.org/ver10/device/wsdl", "device_service"),
            ("http://www.onvif.org/ver10/media/wsdl", "media_service"),
            ("http://www.onvif.org/ver20/ptz/wsdl", "ptz_service"),
            ("http://www.onvif.org/ver10/events/wsdl", "events_service"),
        ]
        return (
            "<tds:GetServicesResponse>"
            + "".join(
                f"<tds:Service><tds:Namespace>{ns}</tds:Namespace>"
                f"<tds:XAddr>{self.base_url}/onvif/{path}</tds:XAddr>"
                "<tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version></tds:Service>"
                for ns, path in services
            )
            + "</tds:GetServicesResponse>"
        )

    def _op_GetDeviceInformation(self, el: ET.Element) -> str:
        return (
            "<tds:GetDeviceInformationResponse>"
            f"<tds:Manufacturer>{escape(self.manufacturer)}</tds:Manufacturer><tds:Model>{escape(self.model)}</tds:Model>"
            "<tds:FirmwareVersion>1.0.0</tds:FirmwareVersion>"
            f"<tds:SerialNumber>{self.serial}</tds:SerialNumber><tds:HardwareId>SW-PTZ</tds:HardwareId>"
            "</tds:GetDeviceInformationResponse>"
        )

    def _op_GetProfiles(self, el: ET.Element) -> str:
        return (
            '<trt:GetProfilesResponse><trt:Profiles token="profile_main" fixed="true">'
            "<tt:Name>main</tt:Name>"
            '<tt:VideoEncoderConfiguration token="vec_main"><tt:Name>main</tt:Name><tt:UseCount>1</tt:UseCount>'
            "<tt:Encoding>H264</tt:Encoding><tt:Resolution><tt:Width>1920</tt:Width><tt:Height>1080</tt:Height></tt:Resolution>"
            "<tt:Quality>5</tt:Quality></tt:VideoEncoderConfiguration>"
            '<tt:PTZConfiguration token="ptz0"><tt:Name>ptz</tt:Name><tt:UseCount>1</tt:UseCount>'
            "<tt:NodeToken>node0</tt:NodeToken></tt:PTZConfiguration>"
            "</trt:Profiles></trt:GetProfilesResponse>"
        )

    def _profile(self, el: ET.Element) -> None:
        token = el.findtext("trt:ProfileToken", None, NS) or el.findtext(
            "tptz:ProfileToken", None, NS
        )
        if token != "profile_main":
            raise SoapFault("ter:InvalidArgVal/ter:NoProfile", f"no profile {token!r}")

    def _media_uri(self, tag: str, uri: str) -> str:
        return (
            f"<trt:{tag}><trt:MediaUri><tt:Uri>{escape(uri)}</tt:Uri>"
            "<tt:InvalidAfterConnect>false</tt:InvalidAfterConnect>"
            "<tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout>"
            f"</trt:MediaUri></trt:{tag}>"
        )

    def _op_GetStreamUri(self, el: ET.Element) -> str:
        self._profile(el)
        return self._media_uri("GetStreamUriResponse", self.rtsp_url)

    def _op_GetSnapshotUri(self, el: ET.Element) -> str:
        self._profile(el)
        return self._media_uri("GetSnapshotUriResponse", f"{self.base_url}/snapshot.jpg")

    def _op_GetStatus(self, el: ET.Element) -> str:
        self._profile(el)
        pan, tilt, zoom, moving = self.pose()
        state = "MOVING" if moving else "IDLE"
        space = "http://www.onvif.org/ver10/tptz/PanTiltSpaces/PositionGenericSpace"
        zspace = "http://www.onvif.org/ver10/tptz/ZoomSpaces/PositionGenericSpace"
        return (
            "<tptz:GetStatusResponse><tptz:PTZStatus><tt:Position>"
            f'<tt:PanTilt x="{pan:.6f}" y="{tilt:.6f}" space="{space}"/>'
            f'<tt:Zoom x="{zoom:.6f}" space="{zspace}"/></tt:Position>'
            f"<tt:MoveStatus><tt:PanTilt>{state}</tt:PanTilt><tt:Zoom>{state}</tt:Zoom></tt:MoveStatus>"
            f"<tt:UtcTime>{iso(self.now())}</tt:UtcTime>"
            "</tptz:PTZStatus></tptz:GetStatusResponse>"
        )

    def _vector(self, el: ET.Element | None, zoom_default: float) -> tuple[float, float, float]:
        """``(x, y, zoom)`` of a PTZVector or PTZSpeed element (absent parts: current pose)."""
        pan, tilt, _, _ = self.pose()
        if el is None:
            return pan, tilt, zoom_default
        pt = el.find("tt:PanTilt", NS)
        zm = el.find("tt:Zoom", NS)
        try:
            x = float(pt.get("x", pan)) if pt is not None else pan
            y = float(pt.get("y", tilt)) if pt is not None else tilt
            z = float(zm.get("x", zoom_default)) if zm is not None else zoom_default
        except ValueError:
            raise SoapFault("ter:InvalidArgVal", "PTZ values must be numbers") from None
        return x, y, z

    def _absolute(self, target: tuple[float, float, float], speed: float = 1.0) -> None:
        x, y, z = target
        if not (-1 <= x <= 1 and -1 <= y <= 1 and 0 <= z <= 1):
            raise SoapFault(
                "ter:InvalidArgVal/ter:InvalidPosition", f"position {target} out of range"
            )
        pan, tilt, zoom, _ = self.pose()
        speeds = (self.pan_speed * speed, self.tilt_speed * speed, self.zoom_speed * speed)
        self._start(_Motion(time.monotonic(), (pan, tilt, zoom), speeds, target=target))

    def _op_AbsoluteMove(self, el: ET.Element) -> str:
        self._profile(el)
        target = self._vector(el.find("tptz:Position", NS), self.pose()[2])
        speed_el = el.find("tptz:Speed/tt:PanTilt", NS)
        speed = float(speed_el.get("x", 1.0)) if speed_el is not None else 1.0
        self.moves.append(("AbsoluteMove", target))
        self._absolute(target, max(0.01, min(1.0, abs(speed))))
        return "<tptz:AbsoluteMoveResponse/>"

    def _op_ContinuousMove(self, el: ET.Element) -> str:
        self._profile(el)
        vx, vy, vz = self._vector(el.find("tptz:Velocity", NS), 0.0)
        if el.find("tptz:Velocity/tt:PanTilt", NS) is None:
            vx = vy = 0.0
        timeout = el.findtext("tptz:Timeout", None, NS)
        until = (self._termination(timeout) - self.now()).total_seconds() if timeout else 3600.0
        pan, tilt, zoom, _ = self.pose()
        velocity = (vx * self.pan_speed, vy * self.tilt_speed, vz * self.zoom_speed)
        self.moves.append(("ContinuousMove", (vx, vy, vz)))
        now = time.monotonic()
        self._start(_Motion(now, (pan, tilt, zoom), velocity, until=now + until))
        return "<tptz:ContinuousMoveResponse/>"

    def _op_Stop(self, el: ET.Element) -> str:
        self._profile(el)
        pan, tilt, zoom, _ = self.pose()
        self.pan, self.tilt, self.zoom, self._motion = pan, tilt, zoom, None
        self.moves.append(("Stop", (pan, tilt, zoom)))
        return "<tptz:StopResponse/>"

    def _op_GetPresets(self, el: ET.Element) -> str:
        self._profile(el)
        return (
            "<tptz:GetPresetsResponse>"
            + "".join(
                f'<tptz:Preset token="{escape(tok)}"><tt:Name>{escape(name)}</tt:Name>'
                f'<tt:PTZPosition><tt:PanTilt x="{p}" y="{t}"/><tt:Zoom x="{z}"/></tt:PTZPosition>'
                "</tptz:Preset>"
                for tok, (name, p, t, z) in self.presets.items()
            )
            + "</tptz:GetPresetsResponse>"
        )

    def _op_GotoPreset(self, el: ET.Element) -> str:
        self._profile(el)
        token = el.findtext("tptz:PresetToken", "", NS)
        if token not in self.presets:
            raise SoapFault("ter:InvalidArgVal/ter:NoToken", f"no preset {token!r}")
        self.moves.append(("GotoPreset", token))
        self._absolute(self.presets[token][1:])
        return "<tptz:GotoPresetResponse/>"

    def _op_GotoHomePosition(self, el: ET.Element) -> str:
        self._profile(el)
        self.moves.append(("GotoHomePosition", self.home))
        self._absolute(self.home)
        return "<tptz:GotoHomePositionResponse/>"

    async def _snapshot(self, request: web.Request) -> web.Response:
        expected = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        if not hmac.compare_digest(request.headers.get("Authorization", ""), expected):
            self.auth_failures += 1
            return web.Response(status=401, headers={"WWW-Authenticate": 'Basic realm="cam"'})
        pan, tilt, zoom, moving = self.pose()
        self.snapshots.append((pan, tilt, zoom, moving, time.monotonic()))
        return web.Response(body=snapshot_jpeg(pan, tilt, zoom), content_type="image/jpeg")

    def _termination(self, text: str | None, default_s: float = 60.0) -> dt.datetime:
        now = self.now()
        if not text:
            return now + dt.timedelta(seconds=default_s)
        m = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?", text.strip())
        if m:
            h, mi, s = (float(x) if x else 0.0 for x in m.groups())
            return now + dt.timedelta(hours=h, minutes=mi, seconds=s)
        try:
            return dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise SoapFault("ter:InvalidArgVal", f"bad termination time {text!r}") from None

    def _op_CreatePullPointSubscription(self, el: ET.Element) -> str:
        sid = str(next(self._ids))
        sub = Subscription(
            sid, self._termination(el.findtext("tev:InitialTerminationTime", None, NS))
        )
        for event in self.pending_events:
            sub.queue.put_nowait(event)
        self.pending_events.clear()
        self.subscriptions[sid] = sub
        self.created_subscriptions += 1
        return (
            "<tev:CreatePullPointSubscriptionResponse><tev:SubscriptionReference>"
            f"<wsa:Address>{self.base_url}/onvif/subscription/{sid}</wsa:Address>"
            "</tev:SubscriptionReference>"
            f"<wsnt:CurrentTime>{iso(self.now())}</wsnt:CurrentTime>"
            f"<wsnt:TerminationTime>{iso(sub.termination)}</wsnt:TerminationTime>"
            "</tev:CreatePullPointSubscriptionResponse>"
        )

    async def _subscription_op(self, op: str, el: ET.Element, sid: str) -> str:
        sub = self.subscriptions.get(sid)
        if sub is None or sub.termination < self.now():
            self.subscriptions.pop(sid, None)
            raise SoapFault("wsrf-rw:ResourceUnknownFault", f"no subscription {sid}", code="Sender")
        if op == "PullMessages":
            sub.pulls += 1
            limit = int(el.findtext("tev:MessageLimit", "10", NS) or 10)
            timeout = self._termination(el.findtext("tev:Timeout", "PT1S", NS)) - self.now()
            wait_s = max(0.0, min(timeout.total_seconds(), 2.0))
            events: list[ScriptedEvent] = []
            try:
                events.append(await asyncio.wait_for(sub.queue.get(), wait_s))
                while len(events) < limit and not sub.queue.empty():
                    events.append(sub.queue.get_nowait())
            except TimeoutError:
                pass
            now = self.now()
            return (
                f"<tev:PullMessagesResponse><tev:CurrentTime>{iso(now)}</tev:CurrentTime>"
                f"<tev:TerminationTime>{iso(sub.termination)}</tev:TerminationTime>"
                + "".join(e.to_xml(now) for e in events)
                + "</tev:PullMessagesResponse>"
            )
        if op == "Renew":
            sub.renewals += 1
            sub.termination = self._termination(el.findtext("wsnt:TerminationTime", None, NS))
            return (
                f"<wsnt:RenewResponse><wsnt:TerminationTime>{iso(sub.termination)}</wsnt:TerminationTime>"
                f"<wsnt:CurrentTime>{iso(self.now())}</wsnt:CurrentTime></wsnt:RenewResponse>"
            )
        if op == "Unsubscribe":
            self.subscriptions.pop(sid, None)
            self.unsubscribed.append(sid)
            return "<wsnt:UnsubscribeResponse/>"
        if op == "SetSynchronizationPoint":
            return "<tev:SetSynchronizationPointResponse/>"
        raise SoapFault(
            "ter:ActionNotSupported", f"{op} is not supported on a subscription", code="Receiver"
        )

    # -- WS-Discovery -----------------------------------------------------------------

    def probe_match(self, relates_to: str) -> str:
        scopes = " ".join(
            [
                "onvif://www.onvif.org/type/video_encoder",
                "onvif://www.onvif.org/type/ptz",
                f"onvif://www.onvif.org/name/{self.model}",
                f"onvif://www.onvif.org/hardware/{self.model}",
                "onvif://www.onvif.org/location/shore",
            ]
        )
        return (
            f'<?xml version="1.0" encoding="UTF-8"?><env:Envelope {XMLNS}><env:Header>'
            f"<wsa04:MessageID>urn:uuid:{uuid.uuid4()}</wsa04:MessageID>"
            f"<wsa04:RelatesTo>{escape(relates_to)}</wsa04:RelatesTo>"
            "<wsa04:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa04:To>"
            "<wsa04:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches</wsa04:Action>"
            "</env:Header><env:Body><d:ProbeMatches><d:ProbeMatch>"
            f"<wsa04:EndpointReference><wsa04:Address>{self.endpoint}</wsa04:Address></wsa04:EndpointReference>"
            "<d:Types>dn:NetworkVideoTransmitter</d:Types>"
            f"<d:Scopes>{scopes}</d:Scopes>"
            f"<d:XAddrs>{self.base_url}/onvif/device_service</d:XAddrs>"
            "<d:MetadataVersion>1</d:MetadataVersion>"
            "</d:ProbeMatch></d:ProbeMatches></env:Body></env:Envelope>"
        )


class _DiscoveryProtocol(asyncio.DatagramProtocol):
    def __init__(self, device: OnvifDevice):
        self.device = device
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            root = ET.fromstring(data)
        except ET.ParseError:
            return
        if root.find("env:Body/d:Probe", NS) is None:
            return
        message_id = root.findtext("env:Header/wsa04:MessageID", "", NS)
        assert self.transport is not None
        self.transport.sendto(self.device.probe_match(message_id).encode(), addr)


async def _main(args: argparse.Namespace) -> None:
    device = OnvifDevice(
        args.user, args.password, clock_skew_s=args.clock_skew_s, rtsp_url=args.rtsp_url
    )
    await device.start(args.port, args.discovery_port)
    print(
        f"READY {device.base_url}/onvif/device_service discovery=127.0.0.1:{device.discovery_port}",
        flush=True,
    )
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="ONVIF test device on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--discovery-port", type=int, default=0)
    parser.add_argument("--user", default="admin")
    parser.add_argument("--password", default="secret")
    parser.add_argument("--clock-skew-s", type=float, default=0.0)
    parser.add_argument("--rtsp-url", default="rtsp://127.0.0.1:8554/cam")
    try:
        asyncio.run(_main(parser.parse_args()))
    except KeyboardInterrupt:
        pass
