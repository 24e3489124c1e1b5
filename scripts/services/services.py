#!/usr/bin/env python3
"""Run a real single-node Apache Kafka (KRaft) and a real PostgreSQL on loopback, for dev and tests.

Standard library only. Kafka comes from Maven Central jars (see kafka-pom.xml) and runs on the
machine's Java 17; PostgreSQL comes from Debian's packages. Both listen on free 127.0.0.1 ports.

    services.py install       fetch/installs what is missing (idempotent)
    services.py start         install, then start both and wait until ready (no-op if healthy)
    services.py env           print the export lines for SAFEGUARD_* settings
    services.py status        exit 0 when both are up
    services.py stop          stop both, delete their data and the state
    services.py stop-kafka    stop only the broker (state and data kept); returns once its JVM has exited
                              and its ports are free again
    services.py start-kafka   start the broker again on the same port and data dir (waits for a previous
                              broker still shutting down; retries if a port or the data dir was still held)

State (ports, pids, dirs) lives in $SAFEGUARD_SERVICES_DIR, default <repo>/.services.
All progress goes to stderr; only `env` (and `status`) write to stdout.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import glob
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
POM = HERE / "kafka-pom.xml"
SERVICES_DIR = Path(os.environ.get("SAFEGUARD_SERVICES_DIR") or (REPO / ".services")).resolve()
STATE_FILE = SERVICES_DIR / "state.json"
LOCK_FILE = SERVICES_DIR / ".lock"
CACHE_ROOT = Path(os.environ.get("SAFEGUARD_CACHE_DIR") or (Path.home() / ".cache" / "safeguard"))

KAFKA_HEAP = os.environ.get("SAFEGUARD_KAFKA_HEAP", "-Xmx768m")
KAFKA_READY_TIMEOUT = float(os.environ.get("SAFEGUARD_KAFKA_READY_TIMEOUT", "120"))
KAFKA_STOP_TIMEOUT = 30.0
# How long a stop waits for the broker's ports to be free again once its JVM has exited, and a start waits
# for them before it gives up (a port can stay held for a moment by a process that is still exiting).
KAFKA_PORT_FREE_TIMEOUT = float(os.environ.get("SAFEGUARD_KAFKA_PORT_FREE_TIMEOUT", "60"))
# A start whose new JVM exits because a port or the data directory's lock was still held tries again.
KAFKA_START_ATTEMPTS = 3
KAFKA_HELD_MARKERS = ("Address already in use", "BindException", "Failed to acquire lock")
READY_TOPIC = "__safeguard_ready"
PG_SUPERUSER = "postgres"
PG_SUPERUSER_PASSWORD = "postgres"
APP_ROLE = "safeguard"
APP_PASSWORD = "safeguard"
APP_DB = "safeguard"

T0 = time.monotonic()


class Failure(Exception):
    """A reported failure: message (and optional log tail) to stderr, exit 1."""


def log(msg: str) -> None:
    print(f"[services {time.monotonic() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def tail(path: Path, lines: int = 40) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read().decode("utf-8", "replace")
    except OSError as exc:
        return f"(no log at {path}: {exc})"
    return "\n".join(data.splitlines()[-lines:])


def run(cmd: list[str], *, user: str | None = None, check: bool = True, quiet: bool = True,
        env: dict[str, str] | None = None, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
    if user is not None and os.geteuid() == 0 and user != "root":
        cmd = ["runuser", "-u", user, "--", *cmd]
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE if quiet else sys.stderr,
                          stderr=subprocess.STDOUT if quiet else sys.stderr, text=True, env=env,
                          timeout=timeout, check=False, cwd="/" if user else None)
    if check and proc.returncode != 0:
        raise Failure(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{(proc.stdout or '').strip()[-4000:]}")
    return proc


def free_port() -> int:
    """A loopback port free now. The project's one such function: bench/processes.py (and through it the tests)
    imports it from here, so this script keeps to the standard library and runs on its own."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_bindable(port: int, *, reuse: bool = True) -> bool:
    """True if a listener could bind 127.0.0.1:port now. With reuse (SO_REUSEADDR, as the JVM and PostgreSQL
    bind their listeners) connections lingering in TIME_WAIT do not count; a listener or an open connection
    using the port as its local port does."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        if reuse:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def ephemeral_port_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def service_port(taken: set[int]) -> int:
    """A free loopback port for a service, outside the kernel's ephemeral range when there is room.

    A port from the ephemeral range can be handed to any outgoing connection as its local port while the
    service is stopped (a client reconnecting to it can even connect to itself), and the restart then fails
    to bind it; a port below the range is never handed out that way.
    """
    low, high = ephemeral_port_range()
    pool = range(20000, low) if low - 20000 >= 1000 else range(high + 1, 65536) if 65535 - high >= 1000 else None
    if pool is not None:
        for _ in range(200):
            port = secrets.choice(pool)
            if port not in taken and port_bindable(port, reuse=False):
                return port
    while (port := free_port()) in taken:
        pass
    return port


def port_users(port: int) -> str:
    """Who holds 127.0.0.1:port, from `ss` (best effort, for error messages)."""
    if shutil.which("ss") is None:
        return "(ss not installed)"
    proc = subprocess.run(["ss", "-Htanp", f"sport = :{port}"], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, check=False)
    return proc.stdout.strip() or "(no socket listed by ss)"


def port_open(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def pid_alive(pid: int | None, must_contain: str | None = None) -> bool:
    """True if pid runs (not a zombie) and, if given, its command line contains must_contain."""
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode("utf-8", "replace")
        if stat[stat.rindex(")") + 2:].startswith("Z"):
            return False
        if must_contain is not None:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if must_contain.encode() not in fh.read():
                    return False
        return True
    except (OSError, ValueError):
        return False


# --------------------------------------------------------------------------- state


def load_state() -> dict[str, Any] | None:
    try:
        return json.loads(STATE_FILE.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise Failure(f"cannot read {STATE_FILE}: {exc}") from exc


def save_state(state: dict[str, Any]) -> None:
    SERVICES_DIR.mkdir(parents=True, exist_ok=True)
    tmp = STATE_FILE.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, STATE_FILE)


@contextlib.contextmanager
def locked():
    SERVICES_DIR.mkdir(parents=True, exist_ok=True)
    with open(LOCK_FILE, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --------------------------------------------------------------------------- install


def apt_install(*packages: str) -> None:
    if os.geteuid() != 0:
        raise Failure(f"need root to apt-get install {' '.join(packages)} (or install them yourself)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    have_lists = bool(glob.glob("/var/lib/apt/lists/*_Packages*"))
    if not have_lists:
        log("apt-get update")
        run(["apt-get", "update"], env=env)
    log(f"apt-get install -y {' '.join(packages)}")
    proc = run(["apt-get", "install", "-y", "--no-install-recommends", *packages], env=env, check=False)
    if proc.returncode != 0 and have_lists:
        log("install failed; apt-get update and retry")
        run(["apt-get", "update"], env=env)
        run(["apt-get", "install", "-y", "--no-install-recommends", *packages], env=env)
    elif proc.returncode != 0:
        raise Failure(f"apt-get install {' '.join(packages)} failed:\n{proc.stdout[-4000:]}")


def pg_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def kafka_version() -> str:
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    node = ET.parse(POM).getroot().find("m:properties/m:kafka.version", ns)
    text = (node.text or "").strip() if node is not None else ""
    if not text:
        raise Failure(f"no kafka.version property in {POM}")
    return text


def kafka_libs() -> Path:
    return CACHE_ROOT / f"kafka-{kafka_version()}" / "libs"


def java_bin() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and Path(home, "bin", "java").exists():
        return str(Path(home, "bin", "java"))
    return shutil.which("java")


def install() -> None:
    started = time.monotonic()
    if pg_bindir() is None:
        apt_install("postgresql")
        if pg_bindir() is None:
            raise Failure("postgresql installed but no initdb found under /usr/lib/postgresql/*/bin")
    if java_bin() is None:
        apt_install("openjdk-17-jre-headless")
    libs = kafka_libs()
    if not (libs / ".complete").exists():
        if shutil.which("mvn") is None:
            apt_install("maven")
        tmp = libs.with_name("libs.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        log(f"fetching Kafka {kafka_version()} jars from Maven Central into {libs}")
        run(["mvn", "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
             "-DincludeScope=runtime", f"-DoutputDirectory={tmp}"])
        if not list(tmp.glob("kafka_2.13-*.jar")):
            raise Failure(f"maven finished but no kafka_2.13 jar in {tmp}")
        (tmp / ".complete").write_text(kafka_version() + "\n")
        shutil.rmtree(libs, ignore_errors=True)
        tmp.rename(libs)
    log(f"install ok ({time.monotonic() - started:.1f}s): PostgreSQL in {pg_bindir()}, "
        f"Kafka {kafka_version()} in {libs}")


# --------------------------------------------------------------------------- Kafka wire checks


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        buf += chunk
    return buf


def _kstr(s: str) -> bytes:
    b = s.encode()
    return struct.pack(">h", len(b)) + b


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, fmt: str) -> Any:
        vals = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return vals[0] if len(vals) == 1 else vals

    def string(self) -> str | None:
        n = self.take(">h")
        if n < 0:
            return None
        s = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return s


def _kafka_call(port: int, api_key: int, version: int, body: bytes, timeout: float = 5.0) -> _Reader:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        header = struct.pack(">hhi", api_key, version, 7) + _kstr("safeguard-services")
        msg = header + body
        sock.sendall(struct.pack(">i", len(msg)) + msg)
        size = struct.unpack(">i", _recv_exact(sock, 4))[0]
        r = _Reader(_recv_exact(sock, size))
        if r.take(">i") != 7:
            raise ConnectionError("correlation id mismatch")
        return r


def kafka_metadata(port: int, topic: str | None) -> tuple[int, int]:
    """Metadata v4 (auto-create on). Returns (broker count, topic error code or 0 if no topic/all led)."""
    topics = [topic] if topic else []
    body = struct.pack(">i", len(topics)) + b"".join(_kstr(t) for t in topics) + b"\x01"
    r = _kafka_call(port, 3, 4, body)
    r.take(">i")  # throttle
    brokers = r.take(">i")
    for _ in range(brokers):
        r.take(">i"); r.string(); r.take(">i"); r.string()  # noqa: E702
    r.string()  # cluster id
    r.take(">i")  # controller id
    err = 0
    for _ in range(r.take(">i")):
        terr = r.take(">h"); r.string(); r.take(">b")  # noqa: E702
        err = err or terr
        for _ in range(r.take(">i")):
            perr, _pidx, leader = r.take(">hii")
            for _ in range(2):
                r.pos += 4 * r.take(">i")
            if not err and (perr or leader < 0):
                err = perr or 5  # LEADER_NOT_AVAILABLE
    return brokers, err


def kafka_find_coordinator(port: int, group: str) -> int:
    r = _kafka_call(port, 10, 1, _kstr(group) + b"\x00")
    r.take(">i")
    return int(r.take(">h"))


def kafka_ready(port: int, full: bool = True) -> tuple[bool, str]:
    try:
        brokers, err = kafka_metadata(port, READY_TOPIC if full else None)
        if brokers < 1:
            return False, "no brokers in metadata"
        if err:
            return False, f"topic {READY_TOPIC} error code {err}"
        if full:
            cerr = kafka_find_coordinator(port, "safeguard-services-ready")
            if cerr:
                return False, f"group coordinator error code {cerr}"
        return True, "ok"
    except (OSError, ConnectionError, struct.error) as exc:
        return False, f"{type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------- Kafka


def kafka_uuid() -> str:
    while True:
        s = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not s.startswith("-"):
            return s


def kafka_java_cmd(kdir: Path, main: list[str]) -> list[str]:
    java = java_bin()
    if java is None:
        raise Failure("java not found (install openjdk-17-jre-headless)")
    return [java, KAFKA_HEAP, "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={kdir / 'logs'}", f"-Dlog4j.configuration=file:{kdir / 'log4j.properties'}",
            "-cp", f"{kafka_libs()}/*", *main]


def kafka_configure(state: dict[str, Any]) -> None:
    k = state["kafka"]
    kdir = Path(k["dir"])
    (kdir / "logs").mkdir(parents=True, exist_ok=True)
    (kdir / "data").mkdir(parents=True, exist_ok=True)
    port, cport = k["port"], k["controller_port"]
    (kdir / "server.properties").write_text(f"""\
# written by scripts/services/services.py: single-node KRaft broker+controller on loopback
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{cport}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs={kdir / 'data'}
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
group.initial.rebalance.delay.ms=0
delete.topic.enable=true
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=168
""")
    (kdir / "log4j.properties").write_text(f"""\
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File={kdir / 'logs' / 'server.log'}
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=3
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.org.apache.kafka.clients=WARN
""")
    log(f"formatting Kafka storage in {kdir / 'data'}")
    run(kafka_java_cmd(kdir, ["kafka.tools.StorageTool", "format", "-t", kafka_uuid(),
                              "-c", str(kdir / "server.properties")]))


def kafka_failure(k: dict[str, Any], why: str) -> Failure:
    kdir = Path(k["dir"])
    return Failure(f"Kafka: {why}\n--- tail of {kdir / 'logs' / 'server.log'} ---\n"
                   f"{tail(kdir / 'logs' / 'server.log')}\n--- tail of {kdir / 'kafka.out'} ---\n"
                   f"{tail(kdir / 'kafka.out', 20)}")


def kafka_running(k: dict[str, Any]) -> bool:
    return pid_alive(k.get("pid"), str(Path(k["dir"]) / "server.properties"))


def kafka_pids(k: dict[str, Any]) -> list[int]:
    """Every live process running this state's broker: the recorded pid and any other JVM started on the same
    server.properties (one whose pid was lost, or one still shutting down)."""
    marker = str(Path(k["dir"]) / "server.properties")
    found = {int(k["pid"])} if kafka_running(k) else set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid() and pid_alive(int(entry.name), marker):
            found.add(int(entry.name))
    return sorted(found)


def wait_exited(pid: int, timeout: float) -> bool:
    """Wait until pid has exited (gone or a zombie). Judged from /proc/PID/stat, not the command line: an
    exiting process's command line reads empty before the kernel has closed its sockets and files."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def kafka_wait_ports_free(k: dict[str, Any], timeout: float = KAFKA_PORT_FREE_TIMEOUT) -> None:
    ports = (k["port"], k["controller_port"])
    deadline = time.monotonic() + timeout
    while busy := [p for p in ports if not port_bindable(p)]:
        if time.monotonic() >= deadline:
            users = "\n".join(f"  {p}: {port_users(p)}" for p in busy)
            raise Failure(f"Kafka: port(s) {', '.join(map(str, busy))} still in use {timeout:.0f}s after the "
                          f"broker stopped; a process other than the broker holds them:\n{users}")
        time.sleep(0.2)


def _log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _log_since(path: Path, offset: int) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def kafka_wait_ready(k: dict[str, Any], alive: Callable[[], bool]) -> tuple[bool, str]:
    """Poll until the broker answers (True) or `alive()` turns false (False, why); raise on the deadline."""
    deadline = time.monotonic() + KAFKA_READY_TIMEOUT
    why = "not started"
    while time.monotonic() < deadline:
        if not alive():
            return False, why
        ok, why = kafka_ready(k["port"])
        if ok:
            log(f"Kafka ready on 127.0.0.1:{k['port']} (pid {k['pid']})")
            return True, "ok"
        time.sleep(0.25)
    err = kafka_failure(k, f"not ready after {KAFKA_READY_TIMEOUT:.0f}s ({why}); killed it")
    kafka_kill(k)
    raise err


def kafka_start(state: dict[str, Any]) -> None:
    k = state["kafka"]
    kdir = Path(k["dir"])
    if kafka_running(k):
        ok, why = kafka_ready(k["port"])
        if ok:
            log(f"Kafka already running on 127.0.0.1:{k['port']} (pid {k['pid']})")
            return
        log(f"Kafka pid {k['pid']} runs but is not ready ({why}); waiting")
        ready, _ = kafka_wait_ready(k, lambda: kafka_running(k))
        if ready:
            return
        # It exited while we waited: a broker that was shutting down, not a failed start. Start a new one.
        log(f"Kafka pid {k['pid']} exited (it was shutting down); starting a new broker")
    logs = (kdir / "logs" / "server.log", kdir / "kafka.out")
    for attempt in range(1, KAFKA_START_ATTEMPTS + 1):
        # A previous broker still exiting (or a stray one on this data dir) is stopped and waited for, and the
        # ports must be free, before a new JVM tries to bind them and lock the data directory.
        kafka_kill(k)
        log(f"starting Kafka {kafka_version()} on 127.0.0.1:{k['port']} (controller {k['controller_port']})"
            + (f", attempt {attempt} of {KAFKA_START_ATTEMPTS}" if attempt > 1 else ""))
        offsets = [_log_size(path) for path in logs]
        with open(kdir / "kafka.out", "ab") as out:
            proc = subprocess.Popen(kafka_java_cmd(kdir, ["kafka.Kafka", str(kdir / "server.properties")]),
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    cwd=kdir, start_new_session=True, close_fds=True)
        k["pid"] = proc.pid
        save_state(state)

        def still_running(started: subprocess.Popen[bytes] = proc) -> bool:
            return started.poll() is None

        ready, _ = kafka_wait_ready(k, still_running)
        if ready:
            return
        k["pid"] = None
        save_state(state)
        written = "".join(_log_since(path, offset) for path, offset in zip(logs, offsets, strict=True))
        held = next((marker for marker in KAFKA_HELD_MARKERS if marker in written), None)
        if held is None or attempt == KAFKA_START_ATTEMPTS:
            raise kafka_failure(k, f"broker process {proc.pid} exited during start-up (exit code {proc.returncode}"
                                   + (f", {held!r} on attempt {attempt})" if held else ")"))
        log(f"Kafka exited during start-up ({held!r}: a port or the data directory was still held); retrying")
        time.sleep(1.0 * attempt)


def kafka_kill(k: dict[str, Any], *, wait_ports: bool = True) -> None:
    """Stop every broker on this state's data dir (SIGTERM, then SIGKILL after KAFKA_STOP_TIMEOUT) and return
    only once each JVM has really exited and both ports are free again; raise a Failure if not in time."""
    for pid in kafka_pids(k):
        log(f"stopping Kafka (pid {pid}, SIGTERM)")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        if not wait_exited(pid, KAFKA_STOP_TIMEOUT):
            log(f"Kafka did not stop within {KAFKA_STOP_TIMEOUT:.0f}s; SIGKILL")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            if not wait_exited(pid, 30):
                raise Failure(f"Kafka: pid {pid} still runs 30s after SIGKILL")
        log(f"Kafka stopped (pid {pid} exited)")
    k["pid"] = None
    if wait_ports:
        kafka_wait_ports_free(k)


# --------------------------------------------------------------------------- PostgreSQL


def pg_os_user() -> str | None:
    """The unprivileged OS user that owns the cluster (None when not root: run as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "safeguard"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            pass
    log("creating system user safeguard")
    run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
         "--shell", "/usr/sbin/nologin", "safeguard"])
    return "safeguard"


def pg_failure(p: dict[str, Any], why: str) -> Failure:
    return Failure(f"PostgreSQL: {why}\n--- tail of {p['log']} ---\n{tail(Path(p['log']))}")


def pg_isready(p: dict[str, Any]) -> bool:
    bindir = Path(p["bindir"])
    return run([str(bindir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(p["port"]), "-t", "3"],
               check=False).returncode == 0


def pg_psql(p: dict[str, Any], sql: str, db: str = "postgres") -> str:
    proc = run([str(Path(p["bindir"]) / "psql"), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
                "-h", p["socket_dir"], "-p", str(p["port"]), "-U", PG_SUPERUSER, "-d", db, "-c", sql],
               user=p["user"])
    return proc.stdout.strip()


def pg_init(state: dict[str, Any]) -> None:
    p = state["postgres"]
    user = p["user"]
    base = Path(p["dir"])
    data = Path(p["data"])
    base.mkdir(parents=True, exist_ok=True)
    if user:
        pw = pwd.getpwnam(user)
        os.chown(base, pw.pw_uid, pw.pw_gid)
        os.chmod(base, 0o700)
        if run(["test", "-w", str(base)], user=user, check=False).returncode != 0:
            raise Failure(f"PostgreSQL: user {user} cannot write {base} (a parent directory is not "
                          f"searchable by it); set SAFEGUARD_SERVICES_DIR to a directory under /tmp or /work")
    pwfile = base / ".pwfile"
    pwfile.write_text(PG_SUPERUSER_PASSWORD + "\n")
    if user:
        os.chown(pwfile, pw.pw_uid, pw.pw_gid)
    os.chmod(pwfile, 0o600)
    log(f"initdb {data} (as OS user {user or pwd.getpwuid(os.geteuid()).pw_name})")
    try:
        run([str(Path(p["bindir"]) / "initdb"), "-D", str(data), "-U", PG_SUPERUSER, f"--pwfile={pwfile}",
             "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"], user=user)
    finally:
        pwfile.unlink(missing_ok=True)
    with open(data / "postgresql.conf", "a") as fh:
        fh.write(f"""
# --- written by scripts/services/services.py (dev/test cluster) ---
listen_addresses = '127.0.0.1'
port = {p['port']}
unix_socket_directories = '{p['socket_dir']}'
max_connections = 200
fsync = on
synchronous_commit = on
full_page_writes = on
log_line_prefix = '%m [%p] %q%u@%d '
# the server's log leaves out an error's DETAIL and CONTEXT: a refused row's values (a child's UPN) are echoed there
log_error_verbosity = terse
""")


def pg_start(state: dict[str, Any]) -> None:
    p = state["postgres"]
    data = Path(p["data"])
    if not (data / "PG_VERSION").exists():
        pg_init(state)
        fresh = True
    else:
        fresh = False
    if pg_isready(p):
        log(f"PostgreSQL already running on 127.0.0.1:{p['port']}")
    else:
        if port_open(p["port"]):
            raise Failure(f"PostgreSQL: port {p['port']} is taken by another process; run `stop` then `start`")
        log(f"starting PostgreSQL on 127.0.0.1:{p['port']}")
        proc = run([str(Path(p["bindir"]) / "pg_ctl"), "-D", str(data), "-l", p["log"], "-w", "-t", "60",
                    "start"], user=p["user"], check=False)
        if proc.returncode != 0:
            raise pg_failure(p, f"pg_ctl start failed ({proc.returncode}): {proc.stdout.strip()}")
        if not pg_isready(p):
            raise pg_failure(p, "pg_ctl started but pg_isready fails on 127.0.0.1")
    if fresh or not pg_psql(p, f"SELECT 1 FROM pg_database WHERE datname = '{APP_DB}'"):
        log(f"creating role {APP_ROLE} and database {APP_DB}")
        if not pg_psql(p, f"SELECT 1 FROM pg_roles WHERE rolname = '{APP_ROLE}'"):
            pg_psql(p, f"CREATE ROLE {APP_ROLE} LOGIN CREATEDB PASSWORD '{APP_PASSWORD}'")
        pg_psql(p, f"CREATE DATABASE {APP_DB} OWNER {APP_ROLE}")
    # Prove a password login over TCP works, as the application will do it.
    env = dict(os.environ, PGPASSWORD=APP_PASSWORD, PGCONNECT_TIMEOUT="5")
    proc = run([str(Path(p["bindir"]) / "psql"), "-X", "-q", "-t", "-A", "-h", "127.0.0.1", "-p", str(p["port"]),
                "-U", APP_ROLE, "-d", APP_DB, "-c", "SELECT 1"], env=env, check=False)
    if proc.returncode != 0 or proc.stdout.strip() != "1":
        raise pg_failure(p, f"login as {APP_ROLE} over 127.0.0.1 failed: {proc.stdout.strip()}")
    log(f"PostgreSQL ready on 127.0.0.1:{p['port']}")


def pg_stop(p: dict[str, Any]) -> None:
    data = Path(p["data"])
    if not (data / "postmaster.pid").exists():
        return
    log("stopping PostgreSQL (pg_ctl stop -m fast)")
    proc = run([str(Path(p["bindir"]) / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "60", "stop"],
               user=p["user"], check=False)
    if proc.returncode != 0 and (data / "postmaster.pid").exists():
        log(f"pg_ctl stop failed: {proc.stdout.strip()}")
        try:
            pid = int((data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        if pid_alive(pid, "postgres"):
            log(f"SIGQUIT to postmaster {pid}")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGQUIT)
    log("PostgreSQL stopped")


# --------------------------------------------------------------------------- commands


def new_state() -> dict[str, Any]:
    bindir = pg_bindir()
    if bindir is None:
        raise Failure("no PostgreSQL binaries; run `install`")
    ports: set[int] = set()
    while len(ports) < 3:
        ports.add(service_port(ports))
    kport, cport, pport = sorted(ports, key=lambda _: secrets.randbits(16))
    pdir = SERVICES_DIR / "postgres"
    data = pdir / "data"
    sock = data if len(str(data)) < 90 else Path("/tmp") / f"safeguard-pg-{pport}"
    return {
        "services_dir": str(SERVICES_DIR),
        "kafka": {"version": kafka_version(), "port": kport, "controller_port": cport,
                  "dir": str(SERVICES_DIR / "kafka"), "pid": None},
        "postgres": {"port": pport, "dir": str(pdir), "data": str(data), "socket_dir": str(sock),
                     "log": str(pdir / "postgres.log"), "bindir": str(bindir), "user": pg_os_user()},
    }


def cmd_install(_: argparse.Namespace) -> int:
    install()
    return 0


def cmd_start(_: argparse.Namespace) -> int:
    started = time.monotonic()
    install()
    with locked():
        state = load_state()
        if state is None:
            state = new_state()
            shutil.rmtree(state["kafka"]["dir"], ignore_errors=True)
            shutil.rmtree(state["postgres"]["dir"], ignore_errors=True)
            sock = Path(state["postgres"]["socket_dir"])
            if sock != Path(state["postgres"]["data"]):
                sock.mkdir(exist_ok=True)
                if state["postgres"]["user"]:
                    pw = pwd.getpwnam(state["postgres"]["user"])
                    os.chown(sock, pw.pw_uid, pw.pw_gid)
            save_state(state)
            kafka_configure(state)
            save_state(state)
        pg_start(state)
        kafka_start(state)
        save_state(state)
    log(f"services ready in {time.monotonic() - started:.1f}s (state in {STATE_FILE})")
    return 0


def need_state() -> dict[str, Any]:
    state = load_state()
    if state is None:
        raise Failure(f"services are not started (no {STATE_FILE}); run `start`")
    return state


def cmd_env(_: argparse.Namespace) -> int:
    state = need_state()
    kp, pp = state["kafka"]["port"], state["postgres"]["port"]
    print(f"export SAFEGUARD_KAFKA_BOOTSTRAP=127.0.0.1:{kp}")
    print(f"export SAFEGUARD_DATABASE_URL=postgresql+psycopg://{APP_ROLE}:{APP_PASSWORD}@127.0.0.1:{pp}/{APP_DB}")
    print(f"export SAFEGUARD_POSTGRES_ADMIN_URL=postgresql+psycopg://{PG_SUPERUSER}:{PG_SUPERUSER_PASSWORD}"
          f"@127.0.0.1:{pp}/postgres")
    return 0


def cmd_status(_: argparse.Namespace) -> int:
    state = load_state()
    if state is None:
        print(f"not started (no {STATE_FILE})")
        return 1
    k, p = state["kafka"], state["postgres"]
    k_ok = kafka_running(k) and kafka_ready(k["port"], full=False)[0]
    p_ok = pg_isready(p)
    print(f"kafka    127.0.0.1:{k['port']}  {'up' if k_ok else 'DOWN'}  pid={k.get('pid')}  {k['dir']}")
    print(f"postgres 127.0.0.1:{p['port']}  {'up' if p_ok else 'DOWN'}  {p['data']}")
    return 0 if (k_ok and p_ok) else 1


def cmd_stop(_: argparse.Namespace) -> int:
    with locked():
        state = load_state()
        if state is None:
            log("nothing to stop")
            return 0
        kafka_kill(state["kafka"], wait_ports=False)  # its ports are given up with the state
        save_state(state)
        pg_stop(state["postgres"])
        shutil.rmtree(state["kafka"]["dir"], ignore_errors=True)
        shutil.rmtree(state["postgres"]["dir"], ignore_errors=True)
        sock = Path(state["postgres"]["socket_dir"])
        if sock != Path(state["postgres"]["data"]):
            shutil.rmtree(sock, ignore_errors=True)
        STATE_FILE.unlink(missing_ok=True)
    log("stopped; state and data removed")
    return 0


def cmd_stop_kafka(_: argparse.Namespace) -> int:
    with locked():
        state = need_state()
        kafka_kill(state["kafka"])
        save_state(state)
    return 0


def cmd_start_kafka(_: argparse.Namespace) -> int:
    with locked():
        state = need_state()
        kafka_start(state)
        save_state(state)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, fn in [("install", cmd_install), ("start", cmd_start), ("env", cmd_env), ("status", cmd_status),
                     ("stop", cmd_stop), ("stop-kafka", cmd_stop_kafka), ("start-kafka", cmd_start_kafka)]:
        sub.add_parser(name).set_defaults(fn=fn)
    args = parser.parse_args(argv)
    try:
        return int(args.fn(args))
    except Failure as exc:
        print(f"services {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
