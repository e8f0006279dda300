"""Settings of a Shorewatch process: environment variables, or a settings file.

Every setting has an environment variable ``SHOREWATCH_<NAME>`` (upper case); a
YAML settings file named by ``SHOREWATCH_SETTINGS`` (or ``--settings``) gives
defaults that the environment overrides. The broker is the exception:
``KAFKA_BOOTSTRAP_SERVERS``, the variable every Kafka tool knows, wins over
everything; without it the running local broker (``shorewatch kafka up``) is used.

============================  ===================  ==========================================
setting                       default              meaning
============================  ===================  ==========================================
bootstrap_servers             local broker         Kafka bootstrap servers, ``host:port[,...]``
app_id                        ``shorewatch``       Faust application id = consumer group
partitions                    4                    partitions of every topic (co-partitioning)
table_store                   ``memory://``        Faust table store; state is rebuilt from
                                                   the changelog topics on start
processing_guarantee          ``at_least_once``    the only one offered: the batched hot path
                                                   writes through the idempotent producer,
                                                   outside Kafka transactions
site                          ``sites/haikou``     the site folder the worker serves
worker_port                   6066                 the worker's web port (metrics, health)
worker_bind                   ``127.0.0.1``        the address of the worker's web port
                                                   (``0.0.0.0`` in a container)
ready_max_lag_s               60                   the worker is ready (``/readyz``) while every
                                                   agent's event-time lag is under this, s...
ready_max_lag_records         10000                ... or its input partitions are read to
                                                   within this many records of their end
data_dir                      ``var/worker``       Faust's local data folder
evidence_dir                  ``var/evidence``     camera evidence store (JPEG frames, crops)
registry_url                  ``sqlite:///var/     the vessel registry's database (SQLAlchemy
                              registry.sqlite``    URL; ``postgresql+psycopg://…`` for a server)
raw_batch_lines               500                  at most this many lines per raw AIS record
auto_offset_reset             ``earliest``         where a new consumer group starts (or ``latest``);
                                                   the start is then committed on every input
                                                   partition, so a restarted or new owner
                                                   resumes from it, not from the end again
ais_disorder_ms               5000                 how far AIS may come out of event-time
                                                   order on one ``ais.fixes`` partition, ms
                                                   (receivers' clocks and delivery delays,
                                                   1 s tag-block resolution); an AIS
                                                   watermark is the newest fix time minus this
camera_disorder_ms            500                  the same for one camera's frames, ms
camera_idle_ms                30000                a camera whose frames trail the most
                                                   advanced camera's by more than this (event
                                                   time, ms), or every camera trailing the
                                                   AIS by ten times this, is offline: the area
                                                   stops waiting for it until it sends again
group_instance_id             (none)               static group membership
                                                   (``group.instance.id``): a stable name per
                                                   worker (e.g. a StatefulSet pod name); a
                                                   worker restarted under the same name within
                                                   the session timeout gets its partitions
                                                   back with no rebalance. A static worker
                                                   that stops does not leave the group: its
                                                   partitions wait for it that long
session_timeout_s             30                   the group's session timeout, s: a worker
                                                   silent this long (killed, or static and
                                                   stopped) loses its partitions to the others
============================  ===================  ==========================================
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import BrokerError, ConfigError

ENV_PREFIX = "SHOREWATCH_"

#: the repository (source checkout) folder: sites, deploy recipes, var/
REPO_DIR = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """The shared data and model folder: ``$SHOREWATCH_SHARED``, default ``../shared``
    beside the repository."""
    return Path(os.environ.get("SHOREWATCH_SHARED", REPO_DIR.parent / "shared")).resolve()


@dataclass(frozen=True, slots=True)
class Settings:
    """Process settings; see the module docstring for each field."""

    bootstrap_servers: str = ""
    app_id: str = "shorewatch"
    partitions: int = 4
    table_store: str = "memory://"
    processing_guarantee: str = "at_least_once"
    site: str = "sites/haikou"
    worker_port: int = 6066
    worker_bind: str = "127.0.0.1"
    ready_max_lag_s: float = 60.0
    ready_max_lag_records: int = 10_000
    data_dir: str = "var/worker"
    evidence_dir: str = "var/evidence"
    registry_url: str = "sqlite:///var/registry.sqlite"
    raw_batch_lines: int = 500
    auto_offset_reset: str = "earliest"
    ais_disorder_ms: int = 5_000
    camera_disorder_ms: int = 500
    camera_idle_ms: int = 30_000
    group_instance_id: str = ""
    session_timeout_s: float = 30.0
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(
        cls, settings_file: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None
    ) -> Settings:
        """Build settings from the settings file (if any) and the environment.

        :raises ConfigError: unknown keys, values of the wrong type, bad guarantee
        """
        env = dict(os.environ if env is None else env)
        values: dict[str, Any] = {}
        path = settings_file or env.get(ENV_PREFIX + "SETTINGS")
        if path:
            try:
                loaded = yaml.safe_load(Path(path).read_text()) or {}
            except (OSError, yaml.YAMLError) as exc:
                raise ConfigError(f"settings file {path}: {exc}") from exc
            if not isinstance(loaded, dict):
                raise ConfigError(f"settings file {path}: expected a mapping")
            values.update(loaded)
        names = {f.name: f for f in dataclasses.fields(cls) if f.name != "extra"}
        for name in names:
            key = ENV_PREFIX + name.upper()
            if key in env:
                values[name] = env[key]
        if env.get("KAFKA_BOOTSTRAP_SERVERS"):
            values["bootstrap_servers"] = env["KAFKA_BOOTSTRAP_SERVERS"]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
        typed: dict[str, Any] = {}
        for name, value in values.items():
            kind = names[name].type
            try:
                if kind in ("int", int):
                    typed[name] = int(value)
                elif kind in ("float", float):
                    typed[name] = float(value)
                else:
                    typed[name] = str(value)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"setting {name}: expected {kind}, got {value!r}") from exc
        settings = cls(**typed)
        if settings.processing_guarantee != "at_least_once":
            raise ConfigError(
                f"setting processing_guarantee: {settings.processing_guarantee!r} is not "
                "supported; Shorewatch processes at_least_once (agents flush and await their "
                "outputs before their input offsets are committed)"
            )
        if settings.auto_offset_reset not in ("earliest", "latest"):
            raise ConfigError(
                f"setting auto_offset_reset: {settings.auto_offset_reset!r} is not earliest or latest"
            )
        for name in ("ais_disorder_ms", "camera_disorder_ms", "camera_idle_ms"):
            if getattr(settings, name) < 0:
                raise ConfigError(f"setting {name}: must be >= 0")
        if not 6.0 <= settings.session_timeout_s <= 300.0:
            raise ConfigError("setting session_timeout_s: must be between 6 and 300")
        if settings.partitions < 1:
            raise ConfigError("setting partitions: must be at least 1")
        return settings

    def broker(self) -> str:
        """The bootstrap servers to use: the configured ones, else the running local broker.

        :raises BrokerError: none configured and no local broker running
        """
        if self.bootstrap_servers:
            return self.bootstrap_servers
        from pipeline.localbroker import running

        info = running()
        if info is None:
            raise BrokerError(
                "no Kafka broker: run `shorewatch kafka up` or set KAFKA_BOOTSTRAP_SERVERS"
            )
        return info.bootstrap
