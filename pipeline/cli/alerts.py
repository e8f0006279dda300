"""``shorewatch alerts``."""

from __future__ import annotations

import argparse
import uuid

from pipeline.cli import lazy


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("alerts", help="follow or deliver the alert topic")
    asub = p.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")
    t = asub.add_parser("tail", help="print alerts as they arrive")
    t.add_argument("--json", action="store_true", help="print the CloudEvent JSON")
    t.add_argument("--from-beginning", action="store_true", help="start at the oldest alert")
    t.add_argument("--tz", default="UTC", help="time zone for display (IANA), e.g. Asia/Shanghai")
    t.add_argument("--idle-exit", type=float, default=None, help="exit after this many idle s")
    t.set_defaults(func=lazy("connectors.alerts", "cmd_tail"))
    w = asub.add_parser(
        "webhook", help="POST alerts to URLs (CloudEvents structured mode, Standard Webhooks)"
    )
    w.add_argument("--url", action="append", required=True, help="receiver URL (repeatable)")
    w.add_argument(
        "--group",
        default=f"shorewatch-webhook-{uuid.uuid4().hex[:6]}",
        help="consumer group (keep it stable to resume where it stopped)",
    )
    w.add_argument(
        "--secret-env",
        default="SHOREWATCH_WEBHOOK_SECRET",
        help="environment variable holding the Standard Webhooks secret (whsec_<base64>)",
    )
    w.add_argument(
        "--retry-schedule",
        default="5s,5m,30m,2h,5h,10h,10h",
        help="delays before each retry (comma-separated, s/m/h)",
    )
    w.add_argument("--idle-exit", type=float, default=None, help="exit after this many idle s")
    w.set_defaults(func=lazy("connectors.alerts", "cmd_webhook"))
    c = asub.add_parser("cap", help="write alert events (JSON lines) as CAP 1.2 XML messages")
    c.add_argument("file", help="alert CloudEvents, one per line (replay --out, tail --json), or -")
    c.add_argument("--out-dir", default="cap", help="folder for the <identifier>.xml files")
    c.add_argument("--sender", default="shorewatch@localhost", help="the CAP sender")
    c.add_argument("--scope", choices=("Public", "Restricted", "Private"), default="Restricted")
    c.set_defaults(func=lazy("connectors.alerts", "cmd_cap"))
