"""``shorewatch publish``."""

from __future__ import annotations

from typing import Any

from pipeline.cli import lazy


def add_commands(sub: Any) -> None:
    p = sub.add_parser(
        "publish", help="publish a JSON-lines file of records to a topic, paced by t_ms"
    )
    p.add_argument("file", help="JSON lines, one record of the topic per line")
    p.add_argument("--topic", required=True, help="topic name, e.g. shorewatch.camera.detection.v1")
    p.add_argument("--key", required=True, help="record field used as key, e.g. camera_id")
    p.add_argument("--speed", default="max", help="pace: a factor of real time, or max")
    p.set_defaults(func=lazy("connectors.kafka", "cmd_publish"))
