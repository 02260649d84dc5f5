"""A single-node Apache Kafka (KRaft, dual role broker+controller) run from plain jars.

The jars come from $KAFKA_HOME/libs when KAFKA_HOME is set, otherwise from
Maven Central, resolved once by `mvn dependency:copy-dependencies` (see
tools/local_kafka/pom.xml) into <repo>/.cache/kafka-<version>/libs.

    kafka = LocalKafka(port=9092, controller_port=9093, data_dir=Path(".cache/kafka-data"))
    kafka.start()          # formats the storage on first use, waits until the broker answers
    kafka.bootstrap        # "127.0.0.1:9092"
    kafka.restart()        # same ports, same data
    kafka.stop()           # SIGTERM, bounded wait, then SIGKILL

With auth=ScramAuth() clients connect with SASL/SCRAM-SHA-512 and the
StandardAuthorizer denies what no ACL allows (as a Strimzi cluster with
`authorization: simple` does); the admin is a super user:

    kafka = LocalKafka(auth=ScramAuth()).start()
    kafka.add_user("pizza-bake", acls)   # acls: KafkaUser spec.authorization.acls (see local_kafka.acls)
    kafka.client_config("pizza-bake")    # librdkafka settings; client_env(): the same as KAFKA_* env

Layout of data_dir: server.properties and log4j2.properties (generated on
every start), broker.log (the broker's own log, unless log_file says
otherwise) and kraft/ (log.dirs: the metadata log and the topics' data);
with auth also scram-admin.password (0600), so a persistent data dir keeps its admin.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

KAFKA_VERSION = "4.3.1"
DEFAULT_PORT = 9092
DEFAULT_CONTROLLER_PORT = 9093
HOST = "127.0.0.1"
# Modest: the machines running this are small and run several brokers at once.
DEFAULT_HEAP = ("-Xms256m", "-Xmx640m")
NODE_ID = 1
SCRAM_MECHANISM = "SCRAM-SHA-512"
SCRAM_ITERATIONS = 8192  # what Strimzi's User Operator uses


class KafkaStartError(RuntimeError):
    """The broker could not be started, or died while starting; the message carries the log's tail."""


def repo_root() -> Path:
    """The repository this package lives in (editable install), else the nearest one above the cwd."""
    for start in (Path(__file__).resolve().parent, Path.cwd().resolve()):
        for candidate in (start, *start.parents):
            if (candidate / "tools" / "local_kafka" / "pom.xml").is_file():
                return candidate
    return Path.cwd().resolve()


def cache_dir() -> Path:
    return repo_root() / ".cache"


def free_port(host: str = HOST) -> int:
    """A TCP port that is free right now (the OS picks it; another process could still take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_is_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def tail(path: Path | None, lines: int = 40) -> str:
    """The last lines of a text file ('' when it does not exist)."""
    if path is None:
        return ""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            data = fh.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


def pdeathsig_prefix() -> list[str]:
    """Make a child get SIGTERM when the process that started it dies (Linux, util-linux setpriv).

    Without it a test run that is killed leaves JVMs and services behind on the machine.
    The signal follows the *thread* that forked the child: start children from a thread
    that lives as long as they should (the main thread, as pytest fixtures do).
    """
    setpriv = shutil.which("setpriv")
    if setpriv and os.uname().sysname == "Linux":
        return [setpriv, "--pdeathsig", "TERM", "--"]
    return []


# --------------------------------------------------------------------------- jars


def kafka_libs(version: str = KAFKA_VERSION, environ: Mapping[str, str] | None = None) -> Path:
    """The directory of the broker's jars: $KAFKA_HOME/libs, or the Maven-resolved cache."""
    env = os.environ if environ is None else environ
    home = env.get("KAFKA_HOME")
    if home:
        libs = Path(home) / "libs"
        if not any(libs.glob("kafka_2.13-*.jar")):
            raise KafkaStartError(f"KAFKA_HOME={home}: {libs} holds no kafka_2.13-*.jar")
        return libs
    return resolve_with_maven(version)


def resolve_with_maven(version: str = KAFKA_VERSION) -> Path:
    """Copy the broker's runtime jars from Maven once; later calls return at once.

    A lock file serialises concurrent test sessions; the jars are copied into a
    temporary directory and renamed into place, so a half-copied cache never exists.
    """
    base = cache_dir() / f"kafka-{version}"
    libs = base / "libs"
    marker = libs / ".complete"
    if marker.exists():
        return libs
    pom = repo_root() / "tools" / "local_kafka" / "pom.xml"
    if not pom.is_file():
        raise KafkaStartError("cannot find tools/local_kafka/pom.xml to resolve Kafka's jars (or set KAFKA_HOME)")
    mvn = shutil.which("mvn")
    if mvn is None:
        raise KafkaStartError(
            "Maven (mvn) is needed once to fetch Kafka's jars: install it "
            "(apt-get install maven) or set KAFKA_HOME to a Kafka distribution"
        )
    base.mkdir(parents=True, exist_ok=True)
    with open(base / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return libs
        staging = Path(tempfile.mkdtemp(prefix="libs-", dir=base))
        cmd = [
            mvn,
            "-q",
            "-B",
            "-f",
            str(pom),
            "dependency:copy-dependencies",
            f"-Dkafka.version={version}",
            f"-DoutputDirectory={staging}",
            "-DincludeScope=runtime",
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise KafkaStartError(f"resolving Kafka {version} with Maven failed:\n{proc.stdout}{proc.stderr}")
        (staging / ".complete").write_text(f"kafka {version}\n")
        if libs.exists():
            shutil.rmtree(libs)
        staging.rename(libs)
    return libs


def java_executable() -> str:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    java = shutil.which("java")
    if java is None:
        raise KafkaStartError(
            "java (17 or newer) is needed to run the local Kafka broker: "
            "install a JDK (apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
        )
    return java


def random_cluster_id() -> str:
    """What `kafka-storage random-uuid` prints: 16 random bytes, URL-safe base64 without padding."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):  # Kafka avoids ids that look like command-line options
            return cid


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class ScramAuth:
    """SASL/SCRAM-SHA-512 for clients, the StandardAuthorizer, no access without an ACL.

    The client listener is SASL_PLAINTEXT (loopback only; TLS is the ingress's
    and the real cluster's business). The controller listener takes SASL/PLAIN
    with the same admin (SCRAM credentials live in the metadata log, which a
    controller cannot need before it has read it), so no principal is anonymous.
    """

    admin_user: str = "admin"


def auth_properties(auth: ScramAuth, admin_password: str) -> dict[str, str]:
    admin = auth.admin_user
    return {
        "listener.security.protocol.map": "SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT",
        "inter.broker.listener.name": "SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": SCRAM_MECHANISM,
        "sasl.mechanism.inter.broker.protocol": SCRAM_MECHANISM,
        "listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config": f"org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{admin}" password="{admin_password}";',
        "sasl.mechanism.controller.protocol": "PLAIN",
        "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
        "listener.name.controller.plain.sasl.jaas.config": f"org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'username="{admin}" password="{admin_password}" user_{admin}="{admin_password}";',
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
        "super.users": f"User:{admin}",
    }


def server_properties(
    port: int,
    controller_port: int,
    log_dirs: Path,
    overrides: Mapping[str, str] | None = None,
    auth: ScramAuth | None = None,
    admin_password: str | None = None,
) -> dict[str, str]:
    client = "SASL_PLAINTEXT" if auth else "PLAINTEXT"
    props = {
        "process.roles": "broker,controller",
        "node.id": str(NODE_ID),
        # A static voter set (not `format --standalone`): the quorum is read from this file
        # on every start, so a persistent data dir keeps working if the ports change.
        "controller.quorum.voters": f"{NODE_ID}@{HOST}:{controller_port}",
        "listeners": f"{client}://{HOST}:{port},CONTROLLER://{HOST}:{controller_port}",
        "advertised.listeners": f"{client}://{HOST}:{port}",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(log_dirs),
        # One node: every internal topic with one replica.
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        # Fewer internal partitions than the default 50: faster first group join and
        # first transaction on a small machine; plenty for one developer.
        "offsets.topic.num.partitions": "6",
        "transaction.state.log.num.partitions": "6",
        "num.partitions": "6",
        "auto.create.topics.enable": "false",
        # Tests start consumers in quick succession: no 3 s wait before the first rebalance.
        "group.initial.rebalance.delay.ms": "0",
        # A crashed transactional producer's open transaction is aborted soon after its
        # transaction.timeout.ms, instead of up to 10 s later: crash tests stay short.
        "transaction.abort.timed.out.transaction.cleanup.interval.ms": "2000",
        # After a crash (SIGKILL) the restarted node cannot register until its previous
        # incarnation's session expires: 5 s instead of 9 s. Heartbeats stay well inside it.
        "broker.session.timeout.ms": "5000",
        "broker.heartbeat.interval.ms": "1000",
        # KIP-848 consumer groups: a member that stops heartbeating (kill -9) is removed
        # after 6 s instead of 45 s, and the others learn of their new partitions within a
        # heartbeat (2 s). The minimums must come down for the values to be accepted.
        "group.consumer.session.timeout.ms": "6000",
        "group.consumer.min.session.timeout.ms": "6000",
        "group.consumer.heartbeat.interval.ms": "2000",
        "group.consumer.min.heartbeat.interval.ms": "1000",
        "num.network.threads": "2",
        "num.io.threads": "4",
        "num.recovery.threads.per.data.dir": "1",
        "log.retention.check.interval.ms": "300000",
    }
    if auth is not None:
        if admin_password is None:
            raise ValueError("an authorizing broker needs its admin's password")
        props.update(auth_properties(auth, admin_password))
    props.update(overrides or {})
    return props


LOG4J2_PROPERTIES = """\
# Generated by local_kafka on every start; the broker's own log, apart from the services' output.
status = warn
name = local-kafka
# The JVM's SIGTERM handler stops Kafka; Log4j's own hook would race it and drop the last lines.
shutdownHook = disable
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {log_file}
appender.file.append = true
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
{console}
rootLogger.level = INFO
rootLogger.appenderRefs = {refs}
{root_refs}
logger.request.name = kafka.request.logger
logger.request.level = WARN
# Connection churn between the node's own broker and controller parts while it stops.
logger.network.name = org.apache.kafka.clients.NetworkClient
logger.network.level = WARN
"""

CONSOLE_APPENDER = """\
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
"""


def log4j2_properties(log_file: Path, console: bool) -> str:
    refs = ["file"] + (["console"] if console else [])
    root_refs = "rootLogger.appenderRef.file.ref = FILE\n"
    if console:
        root_refs += "rootLogger.appenderRef.console.ref = STDOUT\n"
    return LOG4J2_PROPERTIES.format(
        log_file=log_file, console=CONSOLE_APPENDER if console else "", refs=", ".join(refs), root_refs=root_refs
    )


def write_properties(path: Path, props: Mapping[str, str]) -> None:
    lines = ["# Generated by local_kafka on every start."]
    lines += [f"{k}={v}" for k, v in props.items()]
    path.write_text("\n".join(lines) + "\n")


# --------------------------------------------------------------------------- the broker


class LocalKafka:
    """One local Kafka node (KRaft, broker and controller) on 127.0.0.1.

    port, controller_port: 0 picks free ports once (kept for restarts).
    data_dir: persistent when given (formatted on first start only); a new
        temporary directory when None (removed by stop(remove_data=True)).
    log_file: the broker's log (default data_dir/broker.log).
    show_log: also echo the broker's log on this process's stdout.
    overrides: extra server.properties.
    auth: ScramAuth for SASL/SCRAM users and ACLs; None: PLAINTEXT, no authorizer.
    """

    def __init__(
        self,
        port: int = 0,
        controller_port: int = 0,
        data_dir: Path | str | None = None,
        log_file: Path | str | None = None,
        *,
        show_log: bool = False,
        heap: tuple[str, ...] = DEFAULT_HEAP,
        overrides: Mapping[str, str] | None = None,
        version: str = KAFKA_VERSION,
        auth: ScramAuth | None = None,
    ):
        self.port = port or free_port()
        self.controller_port = controller_port or free_port()
        while self.controller_port == self.port:
            self.controller_port = free_port()
        self._temporary = data_dir is None
        self.data_dir = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="local-kafka-"))
        self.data_dir = self.data_dir.resolve()
        self.log_file = Path(log_file).resolve() if log_file else self.data_dir / "broker.log"
        self.show_log = show_log
        self.heap = tuple(heap)
        self.overrides = dict(overrides or {})
        self.version = version
        self.auth = auth
        self._passwords: dict[str, str] = {}  # SCRAM users added by this instance
        self.process: subprocess.Popen | None = None
        self.cluster_id: str | None = None
        self.last_start_seconds: float | None = None  # format (if any) + ready, as measured by start()

    # ------------------------------------------------------------ properties

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def log_dirs(self) -> Path:
        return self.data_dir / "kraft"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def admin_config(self) -> dict:
        """Client settings for this broker as its admin (librdkafka's own log muted: errors still raise)."""
        config = {"bootstrap.servers": self.bootstrap, "logger": _QUIET}
        if self.auth is not None:
            config.update(self._sasl(self.auth.admin_user, self._admin_password()))
        return config

    def client_config(self, user: str) -> dict:
        """librdkafka settings to connect as `user` (added with add_user)."""
        return {"bootstrap.servers": self.bootstrap, **self._sasl(user, self._passwords[user])}

    def client_env(self, user: str) -> dict[str, str]:
        """client_config as the KAFKA_* environment the services read."""
        return {"KAFKA_" + key.upper().replace(".", "_"): value for key, value in self.client_config(user).items()}

    @staticmethod
    def _sasl(user: str, password: str) -> dict:
        return {
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": SCRAM_MECHANISM,
            "sasl.username": user,
            "sasl.password": password,
        }

    def _admin_password(self) -> str:
        """The admin's password, made once per data dir (the credential is written when formatting)."""
        path = self.data_dir / "scram-admin.password"
        if not path.is_file():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(24))
        return path.read_text().strip()

    # ------------------------------------------------------------ users and ACLs (auth only)

    def add_user(
        self, user: str, acls: Sequence[Mapping] = (), password: str | None = None, timeout: float = 30.0
    ) -> dict:
        """Create (or update) a SCRAM user with Strimzi-style ACLs; returns its client_config.

        acls: a KafkaUser's spec.authorization.acls (resource type/name/patternType,
        operations, optional type allow|deny and host), translated by local_kafka.acls.
        """
        from confluent_kafka.admin import (
            AdminClient,
            ScramCredentialInfo,
            ScramMechanism,
            UserScramCredentialUpsertion,
        )

        from local_kafka.acls import acl_bindings

        if self.auth is None:
            raise ValueError("users and ACLs need a broker started with auth=ScramAuth()")
        password = password or secrets.token_urlsafe(18)
        admin = AdminClient(self.admin_config())
        upsert = UserScramCredentialUpsertion(
            user, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS), password.encode()
        )
        for future in admin.alter_user_scram_credentials([upsert], request_timeout=timeout).values():
            future.result(timeout)
        bindings = acl_bindings(user, acls)
        if bindings:
            for future in admin.create_acls(bindings, request_timeout=timeout).values():
                future.result(timeout)
        self._passwords[user] = password
        self._wait_visible(admin, user, bindings, timeout)
        return self.client_config(user)

    def _wait_visible(self, admin, user: str, bindings: list, timeout: float) -> None:
        """The controller has the user and ACLs once the calls return; the broker serves clients from its
        own copy of the metadata, a moment later. A client that came sooner would be refused (a
        transactional producer fatally), so wait until the broker answers with both."""
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import (
            AclBindingFilter,
            AclOperation,
            AclPermissionType,
            ResourcePatternType,
            ResourceType,
        )

        mine = AclBindingFilter(
            ResourceType.ANY,
            None,
            ResourcePatternType.ANY,
            f"User:{user}",
            None,
            AclOperation.ANY,
            AclPermissionType.ANY,
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                admin.describe_user_scram_credentials([user], request_timeout=5.0)[user].result(5.0)
                if len(admin.describe_acls(mine, request_timeout=5.0).result(5.0)) >= len(bindings):
                    return
            except KafkaException:
                pass  # RESOURCE_NOT_FOUND: the broker does not know the user yet
            if time.monotonic() > deadline:
                raise KafkaStartError(f"the broker did not show user {user} and its ACLs within {timeout:.0f} s")
            time.sleep(0.1)

    def __repr__(self) -> str:
        state = f"pid {self.process.pid}" if self.process is not None and self.running else "stopped"
        return f"LocalKafka({self.bootstrap}, controller {HOST}:{self.controller_port}, {self.data_dir}, {state})"

    def __enter__(self) -> LocalKafka:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop(remove_data=self._temporary)

    # ------------------------------------------------------------ lifecycle

    def _java_cmd(self, libs: Path, main: str, *args: str, heap: tuple[str, ...]) -> list[str]:
        return [
            java_executable(),
            "-server",
            *heap,
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExplicitGCInvokesConcurrent",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.data_dir}",
            "-cp",
            f"{libs}/*",
            main,
            *args,
        ]

    def _write_config(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "log4j2.properties").write_text(log4j2_properties(self.log_file, self.show_log))
        config = self.data_dir / "server.properties"
        admin_password = self._admin_password() if self.auth else None
        write_properties(
            config,
            server_properties(
                self.port, self.controller_port, self.log_dirs, self.overrides, self.auth, admin_password
            ),
        )
        return config

    def formatted(self) -> bool:
        return (self.log_dirs / "meta.properties").is_file()

    def _format(self, libs: Path, config: Path) -> None:
        self.cluster_id = random_cluster_id()
        # The storage tool is short-lived: a small heap and the quick JIT tier start it faster.
        args = ["format", "--ignore-formatted", "--cluster-id", self.cluster_id, "--config", str(config)]
        if self.auth is not None:
            # The one user that exists before the broker does: every other user is made through it.
            args += [
                "--add-scram",
                f"{SCRAM_MECHANISM}=[name={self.auth.admin_user},password={self._admin_password()}]",
            ]
        cmd = self._java_cmd(libs, "kafka.tools.StorageTool", *args, heap=("-Xmx256m", "-XX:TieredStopAtLevel=1"))
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise KafkaStartError(
                f"formatting {self.log_dirs} failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}"
            )

    def start(self, timeout: float = 120.0) -> LocalKafka:
        """Format the storage if it is new, start the JVM, wait until the broker answers metadata."""
        if self.running:
            return self
        began = time.monotonic()
        for port in (self.port, self.controller_port):
            if not port_is_free(port):
                raise KafkaStartError(
                    f"port {HOST}:{port} is in use: is another Kafka running? (stop it, or choose other ports)"
                )
        if self.auth is not None and self.formatted() and not (self.data_dir / "scram-admin.password").is_file():
            raise KafkaStartError(
                f"{self.data_dir} was formatted without SCRAM users: use another data dir for a broker with auth"
            )
        libs = kafka_libs(self.version)
        config = self._write_config()
        if not self.formatted():
            self._format(libs, config)
        else:
            self.cluster_id = _read_cluster_id(self.log_dirs / "meta.properties")
        cmd = pdeathsig_prefix() + self._java_cmd(libs, "kafka.Kafka", str(config), heap=self.heap)
        with open(self.log_file, "ab") as out:
            out.write(
                f"\n==== local_kafka: starting Kafka {self.version} on {self.bootstrap} "
                f"at {time.strftime('%Y-%m-%d %H:%M:%S')} ====\n".encode()
            )
            out.flush()
            # The JVM's own stdout/stderr (startup errors, crashes) go to the log as well,
            # unless the log is shown here anyway (show_log).
            target = None if self.show_log else out
            self.process = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=target, stderr=target, cwd=self.data_dir, start_new_session=True
            )
        try:
            self.wait_ready(timeout)
        except BaseException:
            self._terminate(timeout=10.0)
            raise
        self.last_start_seconds = time.monotonic() - began
        return self

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Wait until the broker answers a metadata request; raise (with the log's tail) if it dies first."""
        from confluent_kafka.admin import AdminClient

        admin = AdminClient(
            {**self.admin_config(), "reconnect.backoff.max.ms": "200", "socket.connection.setup.timeout.ms": "2000"}
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise KafkaStartError(
                    f"Kafka exited while starting (exit code {code}); "
                    f"the end of {self.log_file}:\n{tail(self.log_file)}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise KafkaStartError(
                    f"Kafka on {self.bootstrap} did not answer within {timeout:.0f} s; "
                    f"the end of {self.log_file}:\n{tail(self.log_file)}"
                )
            try:
                md = admin.list_topics(timeout=min(2.0, remaining))
                if md.brokers:
                    return
            except Exception:  # KafkaException: not up yet
                pass

    def stop(self, timeout: float = 30.0, remove_data: bool = False) -> int | None:
        """SIGTERM (a controlled shutdown), wait up to timeout, then SIGKILL. Returns the exit code."""
        code = self._terminate(timeout)
        if remove_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        return code

    def kill(self) -> int | None:
        """SIGKILL: a crash, for tests. The data stays."""
        if self.process is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        return self.process.wait()

    def restart(self, timeout: float = 120.0) -> LocalKafka:
        """Stop and start again on the same ports with the same data."""
        self.stop()
        return self.start(timeout)

    def _terminate(self, timeout: float) -> int | None:
        proc = self.process
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        return proc.returncode

    def create_topics(self, partitions: int | None = None) -> dict[str, str]:
        """The shop's topics (kafka_common.shop.topics.create_topics): {topic: "created"|"exists"}."""
        from kafka_common.shop.topics import DEFAULT_PARTITIONS, create_topics

        return create_topics(self.admin_config(), partitions or DEFAULT_PARTITIONS)


def _read_cluster_id(meta: Path) -> str | None:
    for line in meta.read_text().splitlines():
        if line.startswith("cluster.id="):
            return line.split("=", 1)[1].strip()
    return None


class _QuietLogger:
    """librdkafka logs connection refusals while the broker starts: expected, so not shown."""

    def log(self, *args, **kwargs):
        pass


_QUIET = _QuietLogger()


@contextlib.contextmanager
def broker_of_its_own(data_dir: Path, auth: ScramAuth | None = None) -> Iterator[LocalKafka]:
    """A broker for one test or module (one it may stop, restart or lock down), the shop's
    topics created; stopped and its data removed afterwards."""
    kafka = LocalKafka(data_dir=data_dir, auth=auth)
    kafka.start()
    try:
        kafka.create_topics()
        yield kafka
    finally:
        kafka.stop(remove_data=True)
