"""Extra RabbitMQ nodes on this machine, beside the one already running, for tests.

Each node has its own name (``liaison-<tag>-<n>@localhost``), its own ports (AMQP,
Erlang distribution, management), its own data, log, configuration and
enabled-plugins files, all in one directory owned by the ``rabbitmq`` user
(Debian's ``rabbitmq-server`` runs as that user and must write there). The node
inherits the ``rabbitmq`` user's home, hence the same Erlang cookie as the CLI
tools run as that user: that is what lets ``rabbitmqctl -n <node>`` join them into
a cluster. The default node (``rabbit@localhost`` on 5672/15672/25672) is never
named, so nothing here can stop or change it.

Needs root (to switch to the ``rabbitmq`` user, as ``.ci/run`` does) and the
Debian package's scripts under ``/usr/lib/rabbitmq/bin``; :func:`missing` says
what is absent so that fixtures can skip (or fail in CI).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")
RABBIT_HOME = Path("/var/lib/rabbitmq")  # holds the .erlang.cookie the CLI uses
START_TIMEOUT_S = 90.0


def missing() -> str | None:
    """Why extra nodes cannot start here, or ``None`` when they can."""
    if not (RABBIT_BIN / "rabbitmq-server").exists():
        return f"{RABBIT_BIN}/rabbitmq-server is not installed"
    try:
        pwd.getpwnam("rabbitmq")
    except KeyError:
        return "there is no 'rabbitmq' user"
    if os.geteuid() != 0:
        return "starting RabbitMQ nodes as the 'rabbitmq' user needs root"
    return None


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel's choice)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _as_rabbitmq(argv: list[str]) -> list[str]:
    # setpriv execs in place (no PAM session, no extra parent), so signals reach the script.
    return ["setpriv", "--reuid=rabbitmq", "--regid=rabbitmq", "--init-groups", *argv]


@dataclass
class Node:
    """One extra RabbitMQ node: where it lives and how to reach it."""

    name: str  # liaison-<tag>-<n>@localhost
    directory: Path
    amqp_port: int
    dist_port: int
    management_port: int
    plugins: tuple[str, ...] = ("rabbitmq_management",)
    #: (CA, certificate, key) PEM files: AMQP and management then speak TLS only, and
    #: the broker demands a client certificate from that CA (verify_peer,
    #: fail_if_no_peer_cert). Copied into the node's directory for the ``rabbitmq`` user.
    tls: tuple[Path, Path, Path] | None = None
    #: The script's process (shell), while started by us.
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def short(self) -> str:
        """The node name without the host."""
        return self.name.split("@", 1)[0]

    def env(self) -> dict[str, str]:
        """The environment the server scripts and the CLI need for this node."""
        d = self.directory
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(RABBIT_HOME),
            "LANG": "C.UTF-8",
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(d / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_PID_FILE": str(d / "pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_FLAGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    def write_files(self) -> None:
        """Configuration, plugins and empty data/log directories, owned by ``rabbitmq``."""
        d = self.directory
        (d / "mnesia").mkdir(parents=True, exist_ok=True)
        (d / "log").mkdir(exist_ok=True)
        (d / "rabbitmq.conf").write_text(
            self._listeners() + "loopback_users = none\n"
            "log.console = false\n"
            "log.file.level = info\n"
            # A minority side pauses instead of diverging; a killed node rejoins by itself.
            "cluster_partition_handling = pause_minority\n",
            encoding="utf-8",
        )
        (d / "advanced.config").write_text("[].\n", encoding="utf-8")
        (d / "rabbitmq-env.conf").write_text("", encoding="utf-8")
        self.set_plugins(self.plugins)
        _chown_tree(d)

    def _listeners(self) -> str:
        if self.tls is None:
            return (
                f"listeners.tcp.1 = 127.0.0.1:{self.amqp_port}\n"
                f"management.tcp.port = {self.management_port}\n"
                "management.tcp.ip = 127.0.0.1\n"
            )
        tls_dir = self.directory / "tls"
        tls_dir.mkdir(exist_ok=True)
        ca, cert, key = (
            Path(shutil.copy(path, tls_dir / name))
            for path, name in zip(self.tls, ("ca.pem", "server.pem", "server.key"), strict=True)
        )
        files = f"cacertfile = {ca}\n{{p}}certfile = {cert}\n{{p}}keyfile = {key}\n"
        return (
            "listeners.tcp = none\n"
            f"listeners.ssl.1 = 127.0.0.1:{self.amqp_port}\n"
            "ssl_options." + files.format(p="ssl_options.") + "ssl_options.verify = verify_peer\n"
            "ssl_options.fail_if_no_peer_cert = true\n"
            f"management.ssl.port = {self.management_port}\n"
            "management.ssl.ip = 127.0.0.1\n"
            "management.ssl." + files.format(p="management.ssl.")
        )

    def set_plugins(self, plugins: tuple[str, ...]) -> None:
        """Rewrite the node's enabled-plugins file (read at start)."""
        self.plugins = plugins
        path = self.directory / "enabled_plugins"
        path.write_text(f"[{','.join(plugins)}].\n", encoding="utf-8")
        shutil.chown(path, "rabbitmq", "rabbitmq")

    def start(self) -> None:
        """Start the node's OS process (returns at once; see :meth:`wait_amqp`)."""
        log = open(self.directory / "log" / "console.out", "ab")  # noqa: SIM115 - child keeps it
        try:
            self.process = subprocess.Popen(
                _as_rabbitmq([str(RABBIT_BIN / "rabbitmq-server")]),
                env=self.env(),
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        finally:
            log.close()

    def wait_amqp(self, timeout: float = START_TIMEOUT_S) -> None:
        """Until the AMQP port answers; fails with the node's log tail otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _answers(self.amqp_port):
                return
            if self.process is not None and self.process.poll() is not None:
                break
            time.sleep(0.3)
        raise RuntimeError(f"node {self.name} did not open {self.amqp_port}:\n{self.log_tail()}")

    def wait_management(self, timeout: float = START_TIMEOUT_S) -> None:
        """Until the management listener answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _answers(self.management_port):
                return
            time.sleep(0.3)
        raise RuntimeError(f"node {self.name}: no management API on {self.management_port}")

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the node's logs, for failure messages."""
        text = []
        for path in sorted((self.directory / "log").glob("*")):
            try:
                tail = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
            except OSError:
                continue
            text.append(f"== {path.name}\n" + "\n".join(tail))
        return "\n".join(text)

    def ctl(self, *args: str, tool: str = "rabbitmqctl", timeout: float = 120.0) -> str:
        """Run a CLI tool against this node (never the default one) as ``rabbitmq``."""
        result = subprocess.run(
            _as_rabbitmq([str(RABBIT_BIN / tool), "-n", self.name, *args]),
            env=self.env(),
            cwd=RABBIT_HOME,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{tool} -n {self.name} {' '.join(args)} failed ({result.returncode}): "
                f"{result.stdout[-1500:]} {result.stderr[-1500:]}"
            )
        return result.stdout

    def beam_pid(self) -> int | None:
        """The Erlang VM's OS process id, from the node's pid file."""
        try:
            return int((self.directory / "pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def kill(self) -> None:
        """Stop hard: SIGKILL the Erlang VM, as a crash or a power cut would."""
        pid = self.beam_pid()
        if pid is not None:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.process is not None:
            with suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
            self.process = None
        (self.directory / "pid").unlink(missing_ok=True)
        deadline = time.monotonic() + 30
        while _answers(self.amqp_port) and time.monotonic() < deadline:
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop gracefully (the node leaves its queues' leadership first)."""
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.kill()
            return
        self.process = None


@dataclass
class Cluster:
    """Extra nodes; ``nodes[0]`` is the one the others joined."""

    nodes: list[Node]

    def amqp_urls(self, vhost: str, userinfo: str) -> str:
        """Every node's AMQP URL for ``vhost`` as ``userinfo`` (``user:password``),
        comma-separated: the form of the ``amqp_url`` setting."""
        return ",".join(f"amqp://{userinfo}@127.0.0.1:{n.amqp_port}/{vhost}" for n in self.nodes)

    def node(self, name: str) -> Node:
        """The node called ``name`` (full name, as RabbitMQ reports it)."""
        return next(n for n in self.nodes if n.name == name)


def _chown_tree(path: Path) -> None:
    for root, dirs, files in os.walk(path):
        shutil.chown(root, "rabbitmq", "rabbitmq")
        for name in dirs + files:
            shutil.chown(os.path.join(root, name), "rabbitmq", "rabbitmq")


def new_node(base: Path, tag: str, index: int, **options: object) -> Node:
    """A node description with fresh ports and its files written (not started)."""
    node = Node(
        name=f"liaison-{tag}-{index}@localhost",
        directory=base / f"node{index}",
        amqp_port=free_port(),
        dist_port=free_port(),
        management_port=free_port(),
        **options,  # type: ignore[arg-type]
    )
    node.write_files()
    return node


@contextmanager
def node_base(tag: str) -> Iterator[Path]:
    """A directory for nodes' files, readable by ``rabbitmq``, removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix=f"liaison-{tag}-"))
    base.chmod(0o755)
    shutil.chown(base, "rabbitmq", "rabbitmq")
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


@contextmanager
def running(nodes: list[Node]) -> Iterator[list[Node]]:
    """Start ``nodes`` (in parallel) and kill them hard when done, whatever happened."""
    try:
        for node in nodes:
            node.start()
        for node in nodes:
            node.wait_amqp()
        yield nodes
    finally:
        for node in nodes:
            node.kill()


@contextmanager
def cluster(size: int = 3, *, tag: str | None = None) -> Iterator[Cluster]:
    """``size`` new nodes joined into one cluster, with management on each; torn down after."""
    tag = tag or f"c{os.getpid()}"
    with node_base(tag) as base:
        nodes = [new_node(base, tag, i + 1) for i in range(size)]
        with running(nodes):
            first = nodes[0]
            for node in nodes[1:]:
                node.ctl("stop_app")
                node.ctl("join_cluster", first.name)
                node.ctl("start_app")
            for node in nodes:
                node.wait_amqp()
                node.wait_management()
            yield Cluster(nodes)
