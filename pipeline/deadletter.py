"""Dead letters: every reason an input can be rejected, and the one way to build the record.

Nothing is dropped silently: a line, record, frame or delivery that cannot be used goes to
``shorewatch.deadletter.v1`` as a :class:`schemas.records.DeadLetter` with its raw bytes,
a :class:`Reason` and its source, and a counter goes up. The README's dead-letter table is
this enum (``tests/test_deadletter.py`` keeps the two in step).

The framing of AIS lines (:mod:`pipeline.core.nmea`) is pure and names its reasons with
the same strings (:data:`pipeline.core.nmea.REJECT_REASONS`); they are members here too.
"""

from __future__ import annotations

import base64
from enum import StrEnum

from schemas.records import DeadLetter

__all__ = ["DETAIL_MAX_CHARS", "Reason", "dead_letter", "raw_bytes"]

#: longest ``detail`` text kept in a dead letter, characters
DETAIL_MAX_CHARS = 500


class Reason(StrEnum):
    """Why an input was dead-lettered; ``reason.meaning`` says it in one line."""

    meaning: str

    def __new__(cls, value: str, meaning: str) -> Reason:
        obj = str.__new__(cls, value)
        obj._value_ = value
        obj.meaning = meaning
        return obj

    # AIS lines: framing (pipeline.core.nmea)
    BAD_CHECKSUM = "bad_checksum", "the NMEA checksum does not match the sentence"
    TRUNCATED = "truncated", "a sentence or payload cut short (fields or bits missing)"
    BAD_FILL_BITS = "bad_fill_bits", "the fill-bits field is not 0-5"
    FRAGMENT_TIMEOUT = "fragment_timeout", "a multi-sentence message incomplete after the TTL"
    FRAGMENT_ORPHAN = "fragment_orphan", "a fragment that belongs to no message being assembled"
    NOT_ASCII = "not_ascii", "the line holds bytes outside printable ASCII"
    TOO_LONG = "too_long", "the line is longer than any valid AIS line can be"
    GARBAGE = "garbage", "no NMEA sentence could be found in the line"
    # AIS messages: decoding (pipeline.engine.decode)
    UNKNOWN_TYPE = "unknown_type", "an AIS message type that ITU-R M.1371 does not define"
    DECODE_ERROR = "decode_error", "the payload does not decode as its message type"
    # records on the internal topics (pipeline.worker)
    UNDECODABLE_RECORD = "undecodable_record", "a Kafka record that is not valid for its topic"
    DECODE_FAILED = "decode_failed", "decoding a raw AIS batch raised an error"
    TRACK_STEP_FAILED = "track_step_failed", "the track step raised an error on a fixes record"
    AREA_STEP_FAILED = "area_step_failed", "the area step raised an error on an input"
    UNKNOWN_CAMERA = "unknown_camera", "a detection from a camera the site does not list"
    # camera frames (connectors.rtsp, connectors.camera, pipeline.vision)
    EMPTY_FRAME = "empty_frame", "the decoder returned no image"
    BAD_FRAME = "bad_frame", "the image is not an HxWx3 uint8 BGR frame of a usable size"
    BAD_SHAPE = "bad_shape", "the decoded image is not HxWx3"
    BAD_DTYPE = "bad_dtype", "the decoded image is not 8-bit"
    SIZE_CHANGED = "size_changed", "a frame's size differs from the stream's"
    BLANK_FRAME = "blank_frame", "every pixel has the same colour (a decoder's fill)"
    ENCODE_FAILED = "encode_failed", "the evidence JPEG could not be encoded"
    ANALYSIS_FAILED = "analysis_failed", "the frame analyser raised an error on a frame"
    # radar targets (pipeline.engine.radar)
    UNKNOWN_RADAR = (
        "unknown_radar",
        "a radar sentence from a source the site's radars.yaml does not list",
    )
    UNSUPPORTED_SENTENCE = (
        "unsupported_sentence",
        "an NMEA sentence type the radar ingest does not read",
    )
    MISSING_FIELD = "missing_field", "a field the sentence needs is empty or absent"
    BAD_FIELD = "bad_field", "a field holds no valid value (a number, unit, status or time)"
    BEYOND_RANGE = "beyond_range", "a radar target farther than the radar's max_range_m"
    # ASTERIX radar datagrams (pipeline.engine.asterix)
    BAD_ASTERIX = "bad_asterix", "an ASTERIX datagram or data block that does not parse"
    UNSUPPORTED_CATEGORY = (
        "unsupported_category",
        "an ASTERIX category the radar ingest does not read (it reads CAT 010)",
    )
    # publishing and delivery (connectors.kafka, connectors.alerts)
    INVALID_RECORD = "invalid_record", "a recorded line that is not valid JSON for its topic"
    WEBHOOK_REJECTED = "webhook_rejected", "a webhook receiver refused the alert (4xx)"
    WEBHOOK_UNREACHABLE = "webhook_unreachable", "a webhook receiver failed or was unreachable"


def raw_bytes(text: str) -> bytes:
    """The bytes of a raw line as received (connectors decode bytes as Latin-1)."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape")


def dead_letter(
    reason: Reason | str,
    *,
    source: str,
    stage: str,
    detail: str,
    raw: bytes | str,
    rx_t_ms: int,
) -> DeadLetter:
    """The dead-letter record of one rejected input.

    :param reason: a :class:`Reason` (or its value)
    :param source: where the input came from (a receiver, ``camera:<id>``, a topic)
    :param stage: the processing stage that rejected it, e.g. ``ais.frame``
    :param detail: what was wrong, for a person (cut to :data:`DETAIL_MAX_CHARS`)
    :param raw: the input as received; text is stored as its Latin-1 bytes
    :param rx_t_ms: when it was received, ms since the Unix epoch (UTC)
    :raises ValueError: ``reason`` is not a :class:`Reason`
    """
    data = raw_bytes(raw) if isinstance(raw, str) else raw
    return DeadLetter(
        source=source,
        stage=stage,
        reason=Reason(reason).value,  # type: ignore[call-arg]  # a lookup by value
        detail=detail[:DETAIL_MAX_CHARS],
        raw_b64=base64.b64encode(data).decode("ascii"),
        rx_t_ms=int(rx_t_ms),
    )
