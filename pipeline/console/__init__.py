"""The operator console: a web application over the Kafka topics (see ``docs/console.md``).

- :mod:`pipeline.console.users` — the users file (Argon2 hashes, roles)
- :mod:`pipeline.console.triage` — the operator workflow, pure functions of (state, action)
- :mod:`pipeline.console.store` — the materialised actions (SQLite or PostgreSQL)
- :mod:`pipeline.console.coverage` — which stretches of the shore no working camera covers
- :mod:`pipeline.console.feed` — the topics read with aiokafka, pushed to browsers
- :mod:`pipeline.console.web` — the aiohttp application (pages, API, Server-Sent Events)
- :mod:`pipeline.console.run` — what ``shorewatch console`` and ``shorewatch users`` do
  (their argparse wiring is :mod:`pipeline.cli.console`)

:func:`start_console` / :meth:`RunningConsole.stop` run it inside another program
(the demo, the tests).
"""

from __future__ import annotations

from pipeline.console.web import ConsoleConfig, RunningConsole, start_console

__all__ = ["ConsoleConfig", "RunningConsole", "start_console"]
