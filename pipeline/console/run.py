"""What ``shorewatch console`` and ``shorewatch users`` do."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import signal
import sys
from pathlib import Path
from typing import Any

from pipeline import metrics
from pipeline.errors import BrokerUnreachable, ConsoleError


def cmd_users(args: Any) -> int:
    from pipeline.console.users import UsersFile

    uf = UsersFile(args.file)
    cmd = args.users_command
    if cmd == "list":
        for u in sorted(uf.users.values(), key=lambda u: u.name):
            print(f"{u.name}\t{u.role}")
        return 0
    if cmd == "remove":
        uf.remove(args.name)
        uf.save()
        print(f"removed {args.name}")
        return 0
    password = _read_password(args.password_stdin)
    if cmd == "add":
        uf.add(args.name, password, args.role)
    else:
        uf.passwd(args.name, password, args.role)
    uf.save()
    print(f"{cmd}: {args.name} ({uf.users[args.name].role}) in {uf.path}")
    return 0


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise ConsoleError("the passwords differ")
    return first


def cmd_console(args: Any) -> int:
    from pipeline.console.web import ConsoleConfig, start_console
    from pipeline.settings import Settings

    settings = Settings.from_env()
    users = Path(args.users)
    cfg = ConsoleConfig(
        bootstrap=settings.broker(),
        site_dir=Path(args.site or settings.site),
        users_file=users if (users.exists() or not args.demo) else None,
        store_url=args.store,
        evidence_dir=Path(args.evidence_dir or settings.evidence_dir),
        host=args.host,
        port=args.port,
        demo=args.demo,
        notify_severity=args.notify_severity,
        escalate_severity=args.escalate_severity,
        escalate_after_s=args.escalate_after_s,
        coverage_range_m=args.coverage_range_m,
        tls_proxy=args.tls_proxy,
        archive_root=Path(args.archive) if args.archive else None,
    )

    async def main() -> int:
        if not args.keep_running:
            await _check_broker(cfg.bootstrap)
        running = await start_console(cfg)
        print(f"console: {running.url}", flush=True)
        async with metrics.serve_from_env("console", lambda: console_ready(running.console.feed)):
            return await serve(running)

    async def serve(running: Any) -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        try:
            if args.run_for_s is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), args.run_for_s)
            else:
                await stop.wait()
        finally:
            await running.stop()
        return 0

    return asyncio.run(main())


def console_ready(feed: Any) -> tuple[bool, str]:
    """The console is ready once its feed has read the topics' history and while the
    broker answers (the page shows "disconnected" otherwise)."""
    if not feed.ready.is_set():
        return False, "reading the topics' history"
    if not feed.connected:
        return False, "the broker does not answer"
    return True, "ok"


async def _check_broker(bootstrap: str, timeout_s: float = 15.0) -> None:
    from aiokafka import AIOKafkaConsumer

    c = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    try:
        await asyncio.wait_for(c.start(), timeout_s)
    except Exception as exc:  # noqa: BLE001 - whatever the client raised
        raise BrokerUnreachable(
            f"Kafka at {bootstrap} did not answer within {timeout_s:g} s ({exc}); "
            "use --keep-running to serve anyway"
        ) from exc
    finally:
        with contextlib.suppress(Exception):
            await c.stop()
