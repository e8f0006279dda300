"""Stopping asyncio tasks for certain.

``asyncio.wait_for`` of Python 3.11 loses a cancellation that arrives just as the call it
wraps finishes (bpo-42130, fixed in 3.12): it returns the call's result and the task runs
on. A shutdown that cancels a task once and then awaits it without a deadline hangs when
that happens. :func:`cancel_and_wait` cancels again until the tasks have finished, within a
deadline. Inside loops that may be cancelled, prefer ``async with asyncio.timeout(...)``,
which keeps the cancellation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence


async def cancel_and_wait(
    tasks: Sequence[asyncio.Task], every_s: float = 0.5, timeout_s: float | None = None
) -> set[asyncio.Task]:
    """Cancel ``tasks`` and wait until every one has finished, cancelling the ones still
    running again every ``every_s`` seconds, for at most ``timeout_s`` seconds (``None``:
    until they have finished). Their results and exceptions are retrieved, not raised.

    :returns: the tasks still running at the deadline (empty when all have finished)
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    pending = {t for t in tasks if not t.done()}
    while pending:
        left = every_s if deadline is None else min(every_s, deadline - time.monotonic())
        if left <= 0:
            break
        for t in pending:
            t.cancel()
        _, pending = await asyncio.wait(pending, timeout=left)
    await asyncio.gather(*(t for t in tasks if t.done()), return_exceptions=True)
    return pending
