"""A real single-node Apache Kafka (KRaft, combined broker + controller) on 127.0.0.1.

The broker's jars come from Maven Central through ``deploy/kafka/pom.xml``
(``org.apache.kafka:kafka_2.13`` plus the log4j2 SLF4J binding) and are cached in
``~/.cache/shorewatch/kafka-<version>/libs``; the broker's configuration, data and
log live in a run folder (``$SHOREWATCH_KAFKA_DIR``, default
``~/.cache/shorewatch/kafka-run``). Recipe: ``../shared/DESIGN.md`` §3.

When ``KAFKA_BOOTSTRAP_SERVERS`` is set, nothing here starts a broker: every
command uses that one.

Commands: ``shorewatch kafka up`` (prints the bootstrap address), ``kafka status``,
``kafka down``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.errors import LocalKafkaError, MissingToolError
from pipeline.localbroker import BrokerInfo, _pid_alive, _port_open, _read_meta, run_dir, running
from pipeline.settings import REPO_DIR

KAFKA_VERSION = os.environ.get("SHOREWATCH_KAFKA_VERSION", "4.3.1")
POM = REPO_DIR / "deploy" / "kafka" / "pom.xml"
START_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0


def cache_dir() -> Path:
    """Where the broker's jars are cached, per Kafka version."""
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return root / "shorewatch" / f"kafka-{KAFKA_VERSION}"


def _require_tools() -> tuple[str, str]:
    java = shutil.which("java")
    mvn = shutil.which("mvn")
    missing = []
    if java is None:
        missing.append("Java 17+ (Debian: apt-get install openjdk-17-jre-headless)")
    if mvn is None:
        missing.append("Maven (Debian: apt-get install maven)")
    if java is None or mvn is None:
        raise MissingToolError(
            "the local Kafka broker needs "
            + " and ".join(missing)
            + "; or set KAFKA_BOOTSTRAP_SERVERS to use an existing broker"
        )
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    major = _java_major(out)
    if major is not None and major < 17:
        raise MissingToolError(
            f"Kafka 4 needs Java 17 or newer, found Java {major}: {out.splitlines()[0]}"
        )
    return java, mvn


def _java_major(version_text: str) -> int | None:
    for token in version_text.replace('"', " ").split():
        head = token.split(".")[0]
        if head.isdigit() and token[0].isdigit():
            n = int(head)
            return int(token.split(".")[1]) if n == 1 else n
    return None


def libs_dir() -> Path:
    return cache_dir() / "libs"


def fetch(quiet: bool = True) -> Path:
    """Resolve the broker's jars from Maven Central into the cache (once).

    :returns: the folder of jars
    """
    _, mvn = _require_tools()
    libs = libs_dir()
    marker = libs / f"kafka_2.13-{KAFKA_VERSION}.jar"
    if marker.exists():
        return libs
    if not POM.exists():
        raise LocalKafkaError(f"{POM} not found: run from a Shorewatch source checkout")
    libs.mkdir(parents=True, exist_ok=True)
    print(
        f"fetching Apache Kafka {KAFKA_VERSION} from Maven Central into {libs} ...", file=sys.stderr
    )
    cmd = [
        mvn,
        "-B",
        *(["-q"] if quiet else []),
        "-f",
        str(POM),
        f"-Dkafka.version={KAFKA_VERSION}",
        "dependency:copy-dependencies",
        f"-DoutputDirectory={libs}",
        "-DincludeScope=runtime",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not marker.exists():
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
        raise LocalKafkaError(f"Maven could not fetch Kafka {KAFKA_VERSION}:\n{tail}")
    return libs


def _free_port(preferred: int | None = None) -> int:
    for candidate in ([preferred] if preferred else []) + [0]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise LocalKafkaError("no free TCP port on 127.0.0.1")


def _server_properties(data: Path, port: int, controller_port: int) -> str:
    return f"""# Written by shorewatch kafka up: single-node KRaft, loopback only.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={data}
num.partitions=4
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
log.segment.bytes=67108864
"""


def _data_dir_ok(data: Path, cluster_id: str | None) -> tuple[bool, str]:
    meta = data / "meta.properties"
    if not meta.exists():
        return False, "no meta.properties"
    try:
        props = dict(line.split("=", 1) for line in meta.read_text().splitlines() if "=" in line)
    except (OSError, ValueError) as exc:
        return False, f"unreadable meta.properties ({exc})"
    if cluster_id and props.get("cluster.id") != cluster_id:
        return False, f"cluster id {props.get('cluster.id')!r} is not {cluster_id!r}"
    return True, ""


def new_cluster_id() -> str:
    """A random KRaft cluster id: a UUID in URL-safe base64 that does not start with
    ``-`` (Kafka's own ``Uuid.randomUuid`` rule; the storage tool would read such an id
    as an option)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


def _format(java: str, libs: Path, props: Path, data: Path) -> str:
    cluster_id = new_cluster_id()
    if data.exists():
        shutil.rmtree(data)
    proc = subprocess.run(
        [
            java,
            "-cp",
            f"{libs}/*",
            "kafka.tools.StorageTool",
            "format",
            "-t",
            cluster_id,
            "-c",
            str(props),
            "--standalone",
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise LocalKafkaError(f"formatting {data} failed:\n{proc.stdout}{proc.stderr}")
    return cluster_id


def up(timeout_s: float = START_TIMEOUT_S) -> BrokerInfo:
    """Start the local broker (fetching and formatting as needed); idempotent.

    Ports are kept from the previous run when free (the KRaft quorum remembers its
    controller endpoint); if one is taken, new ports are chosen and the data
    folder is formatted again. A stale or corrupt data folder is formatted again.

    :param timeout_s: how long to wait for the broker to accept requests, s
    """
    info = running()
    if info:
        return info
    java, _ = _require_tools()
    libs = fetch()
    rdir = run_dir()
    rdir.mkdir(parents=True, exist_ok=True)
    data = rdir / "data"
    props = rdir / "server.properties"
    meta = _read_meta() or {}
    port = meta.get("port")
    cport = meta.get("controller_port")
    cluster_id: str | None = meta.get("cluster_id")
    reformat_why = ""
    if not (port and cport) or _port_open(port) or _port_open(cport):
        if port:
            reformat_why = f"port {port} or {cport} is in use"
        port = _free_port(19092)
        cport = _free_port()
        cluster_id = None
    props.write_text(_server_properties(data, port, cport))
    ok, why = _data_dir_ok(data, cluster_id)
    if not ok or reformat_why:
        if data.exists():
            print(
                f"local Kafka data folder {data} unusable ({reformat_why or why}): formatting it again",
                file=sys.stderr,
            )
        cluster_id = _format(java, libs, props, data)
    log_path = rdir / "kafka.log"
    assert cluster_id is not None  # formatted above when unknown
    for attempt in (1, 2):
        info = _start(java, libs, props, log_path, port, cport, cluster_id, timeout_s)
        if info:
            return info
        if attempt == 1:
            print(
                f"local Kafka did not start; formatting {data} again and retrying (see {log_path})",
                file=sys.stderr,
            )
            cluster_id = _format(java, libs, props, data)
    tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-30:])
    raise LocalKafkaError(f"local Kafka did not start within {timeout_s:.0f} s; log tail:\n{tail}")


def _start(
    java: str,
    libs: Path,
    props: Path,
    log_path: Path,
    port: int,
    cport: int,
    cluster_id: str,
    timeout_s: float,
) -> BrokerInfo | None:
    heap = os.environ.get("SHOREWATCH_KAFKA_HEAP", "768m")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [
                java,
                f"-Xmx{heap}",
                f"-Xms{heap}",
                "-XX:+UseG1GC",
                "-Djava.awt.headless=true",
                "-cp",
                f"{libs}/*",
                "kafka.Kafka",
                str(props),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    info = BrokerInfo(
        pid=proc.pid, port=port, controller_port=cport, cluster_id=cluster_id, version=KAFKA_VERSION
    )
    (run_dir() / "broker.json").write_text(
        json.dumps(
            {
                "pid": info.pid,
                "port": port,
                "controller_port": cport,
                "cluster_id": cluster_id,
                "version": KAFKA_VERSION,
            }
        )
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return None
        if _port_open(port) and _broker_answers(info.bootstrap):
            return info
        time.sleep(0.5)
    _stop_pid(proc.pid)
    return None


def _broker_answers(bootstrap: str) -> bool:
    from pipeline.admin import check_broker  # local import: aiokafka only when needed
    from pipeline.errors import BrokerUnreachable

    try:
        check_broker(bootstrap, timeout_s=5.0)
    except BrokerUnreachable:
        return False
    return True


def _stop_pid(pid: int, timeout_s: float = STOP_TIMEOUT_S) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    except PermissionError:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _pid_alive(pid):
            _reap(pid)
            return
        time.sleep(0.2)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _reap(pid)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def down() -> bool:
    """Stop the local broker cleanly (SIGTERM, then SIGKILL after 30 s).

    :returns: whether a broker was running
    """
    meta = _read_meta()
    if not meta or not _pid_alive(meta["pid"]):
        return False
    _stop_pid(meta["pid"])
    return True


# --- CLI ---------------------------------------------------------------------------


def _external() -> str | None:
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or None


def cmd_up(args: argparse.Namespace) -> int:
    ext = _external()
    if ext:
        from pipeline.admin import check_broker

        check_broker(ext, timeout_s=args.timeout)
        print(ext)
        print("KAFKA_BOOTSTRAP_SERVERS is set: using that broker, none started", file=sys.stderr)
        return 0
    info = up()
    print(info.bootstrap)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    ext = _external()
    if ext:
        from pipeline.admin import check_broker

        n = check_broker(ext, timeout_s=args.timeout)
        print(f"external broker {ext}: reachable, {n} topics")
        return 0
    info = running()
    if info is None:
        print(f"local Kafka {KAFKA_VERSION}: not running (run dir {run_dir()})")
        return 1
    from pipeline.admin import check_broker

    n = check_broker(info.bootstrap, timeout_s=args.timeout)
    print(
        f"local Kafka {info.version}: running, pid {info.pid}, bootstrap {info.bootstrap}, "
        f"{n} topics, data {run_dir() / 'data'}"
    )
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    if _external():
        print("KAFKA_BOOTSTRAP_SERVERS is set: not stopping an external broker", file=sys.stderr)
        return 0
    print("stopped" if down() else "local Kafka was not running")
    return 0


@contextmanager
def broker(say: Callable[[str], None] | None = None) -> Iterator[str]:
    """The broker to use, as a bootstrap address: ``KAFKA_BOOTSTRAP_SERVERS`` (checked
    within 10 s), else the local one, started here if it is not running and then stopped
    again at the end.

    :param say: called with a line about which broker is used
    """
    from pipeline.admin import check_broker
    from pipeline.settings import Settings

    say = say or (lambda _line: None)
    configured = Settings.from_env().bootstrap_servers
    if configured:
        check_broker(configured, timeout_s=10)
        say(f"using the Kafka broker at {configured}")
        yield configured
        return
    info = running()
    started = info is None
    if info is None:
        say("starting the local Kafka broker (fetched from Maven Central on first use)")
        info = up()
    say(f"Kafka {info.version} at {info.bootstrap}")
    try:
        yield info.bootstrap
    finally:
        if started:
            down()
            say("local Kafka stopped")
