"""Where the local development broker (``shorewatch kafka up``) is found: its run folder and state file."""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path


def run_dir() -> Path:
    """Where the local broker keeps its configuration, data and log."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "shorewatch"
    return Path(os.environ.get("SHOREWATCH_KAFKA_DIR", default / "kafka-run"))


@dataclass(frozen=True, slots=True)
class BrokerInfo:
    """A running local broker.

    :param port: PLAINTEXT listener port on 127.0.0.1
    :param controller_port: KRaft controller listener port on 127.0.0.1
    """

    pid: int
    port: int
    controller_port: int
    cluster_id: str
    version: str

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


def _port_open(port: int, timeout_s: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return True


def _read_meta() -> dict | None:
    path = run_dir() / "broker.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def running() -> BrokerInfo | None:
    """The local broker if it is running and accepting connections, else ``None``."""
    meta = _read_meta()
    if not meta:
        return None
    info = BrokerInfo(**meta)
    if _pid_alive(info.pid) and _port_open(info.port):
        return info
    return None
