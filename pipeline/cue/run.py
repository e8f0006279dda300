"""``shorewatch cue --site DIR``: the cue service as a process."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from pipeline.cue.service import CueService, CueSettings
from pipeline.settings import Settings
from pipeline.site import load_site
from pipeline.vision.evidence import DirectoryEvidenceStore


def cmd_run(args: argparse.Namespace) -> int:
    """Run the cue service on the site's PTZ cameras (``--site``, else the ``site``
    setting) until SIGINT or SIGTERM; Prometheus metrics and health on
    ``SHOREWATCH_METRICS_PORT`` when it is set."""
    settings = Settings.from_env()
    args.site = args.site or settings.site
    site = load_site(args.site, require_env=True)
    service = CueService(
        site.cameras,
        bootstrap=settings.broker(),
        evidence=DirectoryEvidenceStore(args.evidence_dir or settings.evidence_dir),
        settings=CueSettings(
            dwell_s=args.dwell_s,
            min_interval_s=args.min_interval_s,
            min_severity=args.min_severity,
            vessel_length_m=args.vessel_length_m,
            radar=args.radar,
            radar_severity=args.radar_severity,
        ),
    )
    if not service.cameras:
        print(f"shorewatch cue: {args.site} has no camera with onvif and ptz", file=sys.stderr)
        return 2

    async def main() -> None:
        from pipeline import metrics

        async with metrics.serve_from_env("cue"):
            task = asyncio.create_task(service.run())
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError):
                    loop.add_signal_handler(sig, task.cancel)
            with contextlib.suppress(asyncio.CancelledError):
                await task

    asyncio.run(main())
    print(f"shorewatch cue: {len(service.timings)} cue(s) with snapshots", file=sys.stderr)
    return 0
