"""A local Spark Connect server, for tests (tests/conftest.py's `spark_server`) and for
development (`python -m products.connectors.spark_server`, and `DEMO_ENGINE=spark make
run` later).

Spark itself comes from the full `pyspark` package (its jars, Spark Connect's included, and
`bin/spark-submit`) installed in a virtualenv of its own, var/spark-server (`make
spark-server`; SPARK_SERVER_VENV names another), never in the portal's: the portal has
the client only (`pyspark-client`), which installs a package of the same name. The
server needs Java 17 (JAVA_HOME, or `java` on the PATH).

The server runs Spark in local mode (two cores, a driver of DRIVER_MEMORY), listens on
127.0.0.1 only, keeps its warehouse (and anything else it writes) under the work folder
it is given, and keeps its catalog in memory: tables are defined again by whoever starts
it (their files stay in the warehouse folder). `stop()` ends it and its JVM (the process
group it leads); so does the end of the process that started it (at its exit, or on
Linux when it is killed: start it from a thread that lives as long as the server).

Memory: the driver (DRIVER_MEMORY of heap, ~400 MB resident when idle, ~650 MB after some
queries) also holds each result's partitions on their way to the client: a read of a few
million rows at once needs a driver of 1g or more (`driver_memory`).

    with LocalSparkServer(work_dir=Path("/tmp/spark")) as server:
        server.url   # "sc://127.0.0.1:<port>"

Import-light: no pyspark, no Django.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import weakref
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
SERVER_VENV = ROOT / "var" / "spark-server"
SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
DRIVER_MEMORY = "640m"
CORES = 2
START_TIMEOUT_SECONDS = 120


class SparkServerError(RuntimeError):
    """The server could not be started (the message ends with its log's last lines)."""


def server_venv() -> Path:
    return Path(os.environ.get("SPARK_SERVER_VENV") or SERVER_VENV)


def spark_home(venv: Path | None = None) -> Path | None:
    """The full pyspark package (Spark's home: bin/, jars/) of the server's virtualenv."""
    for candidate in sorted((venv or server_venv()).glob("lib/python3*/site-packages/pyspark")):
        if (candidate / "bin" / "spark-submit").exists() and (candidate / "jars").is_dir():
            return candidate
    return None


def java_executable() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def unavailable_reason(venv: Path | None = None) -> str:
    """Why no local server can be started here ("" when one can)."""
    if java_executable() is None:
        return "Java is not installed (Spark needs Java 17: make java installs Debian's)"
    if spark_home(venv) is None:
        return (
            f"Spark is not installed in {venv or server_venv()} "
            "(make spark-server installs the pyspark package there)"
        )
    return ""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


class LocalSparkServer:
    """One Spark Connect server process (and its JVM) on 127.0.0.1."""

    def __init__(
        self,
        *,
        work_dir: Path,
        port: int | None = None,
        driver_memory: str = DRIVER_MEMORY,
        venv: Path | None = None,
    ) -> None:
        self.work_dir = Path(work_dir)
        self.port = port or free_port()
        self.driver_memory = driver_memory
        self.venv = venv
        self.log_path = self.work_dir / "spark-connect.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"sc://127.0.0.1:{self.port}"

    @property
    def warehouse(self) -> Path:
        return self.work_dir / "warehouse"

    def command(self) -> list[str]:
        home = spark_home(self.venv)
        if home is None:
            raise SparkServerError(unavailable_reason(self.venv))
        conf = {
            "spark.connect.grpc.binding.address": "127.0.0.1",
            "spark.connect.grpc.binding.port": str(self.port),
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.sql.warehouse.dir": str(self.warehouse),
            "spark.local.dir": str(self.work_dir / "local"),
            "spark.sql.session.timeZone": "UTC",
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.log.level": "WARN",
            "spark.driver.extraJavaOptions": f"-Duser.timezone=UTC "
            f"-Djava.io.tmpdir={self.work_dir / 'tmp'} "
            f"-Dderby.system.home={self.work_dir / 'derby'}",
        }
        # The JVM ends with the process that started it, even when that one is killed
        # (setpriv: the parent-death signal, kept through spark-submit's exec of java).
        command = ["setpriv", "--pdeathsig", "TERM", "--"] if shutil.which("setpriv") else []
        command += [
            str(home / "bin" / "spark-submit"),
            "--class",
            SERVER_CLASS,
            "--name",
            "data-product-portal local Spark Connect",
            "--master",
            f"local[{CORES}]",
            "--driver-memory",
            self.driver_memory,
        ]
        for key, value in conf.items():
            command += ["--conf", f"{key}={value}"]
        return command

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        home = spark_home(self.venv)
        env["SPARK_HOME"] = str(home)
        env["SPARK_LOCAL_IP"] = "127.0.0.1"
        env["SPARK_CONF_DIR"] = str(self.work_dir / "conf")  # none of the host's
        java = java_executable()
        if java and "JAVA_HOME" not in env:
            env["JAVA_HOME"] = str(Path(os.path.realpath(java)).parent.parent)
        # A client's settings in this environment are not the server's business.
        for name in ("SPARK_REMOTE", "SPARK_CONNECT_MODE_ENABLED", "PYSPARK_SUBMIT_ARGS"):
            env.pop(name, None)
        return env

    def start(self, *, timeout: float = START_TIMEOUT_SECONDS) -> LocalSparkServer:
        """Start the server and wait until it accepts connections. Raises
        SparkServerError (with the log's end) when it exits or does not answer."""
        for folder in ("tmp", "conf", "local"):
            (self.work_dir / folder).mkdir(parents=True, exist_ok=True)
        command, env = self.command(), self.environment()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.work_dir,  # metastore_db, derby.log, spark-warehouse: kept here
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() ends the JVM too
            )
        _started.add(self)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SparkServerError(
                    f"The Spark Connect server exited ({self.process.returncode}):\n"
                    + self.log_tail()
                )
            if _listening(self.port):
                return self
            time.sleep(0.2)
        self.stop()
        raise SparkServerError(
            f"The Spark Connect server did not answer within {timeout:.0f} s:\n" + self.log_tail()
        )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, *, timeout: float = 20) -> None:
        """End the server and its JVM: SIGTERM to its process group (Spark stops its
        context on it), SIGKILL when it has not ended within `timeout`."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(timeout=10)
        self.process = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> LocalSparkServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


_started: weakref.WeakSet[LocalSparkServer] = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    """Servers still running when the process that started them exits."""
    for server in list(_started):
        server.stop(timeout=10)


def main(argv: list[str]) -> int:
    """`python -m products.connectors.spark_server [PORT]`: a server in the foreground,
    its work folder under var/spark, until Ctrl-C."""
    reason = unavailable_reason()
    if reason:
        print(f"Cannot start Spark Connect: {reason}.", file=sys.stderr)
        return 1
    port = int(argv[0]) if argv else 15002
    server = LocalSparkServer(work_dir=ROOT / "var" / "spark", port=port)
    started = time.monotonic()
    try:
        server.start()
    except SparkServerError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"Spark Connect at {server.url} ({time.monotonic() - started:.1f} s); Ctrl-C stops it.")
    try:
        while server.running:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
