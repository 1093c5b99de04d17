"""Start the web server, a Celery worker and Celery beat; stop them all on Ctrl-C.

`make run` calls this after migrating and seeding. With no environment set everything is
embedded (SQLite, a filesystem broker under var/); with DATABASE_URL, CELERY_BROKER_URL
and REDIS_URL set the same processes run on PostgreSQL and Redis.
"""

import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

DEMO_LOGINS = [
    ("admin", "administrator: everything, Django admin at /admin/"),
    ("owner", "owner of the Sales domain: edit, publish, refresh schemas"),
    ("steward", "steward of the Marketing domain: edit and publish its products"),
    ("supply", "owner of the Supply Chain domain"),
    ("analyst", "signed-in analyst: browse and search published products"),
    ("viewer", "signed-in viewer: browse and search published products"),
]


class Command(BaseCommand):
    help = "Run the web server, a Celery worker and Celery beat together."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--host", default="127.0.0.1")

    def handle(self, *args, port: int, host: str, **options):
        python = sys.executable
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
        processes: dict[str, subprocess.Popen] = {}
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        for name, command in commands.items():
            processes[name] = subprocess.Popen(command, start_new_session=True)

        db = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
        broker = "embedded filesystem broker (var/broker)" if embedded else "Redis"
        lines = [
            "",
            "=" * 72,
            f"  Data-product portal: http://{host}:{port}/",
            f"  metadata: {db}; tasks: Celery worker + beat on the {broker}",
            "  Demo logins (password: portal-demo):",
            *[f"    {user:<8} {what}" for user, what in DEMO_LOGINS],
            "  Ctrl-C stops the web server, the worker and beat.",
            "=" * 72,
            "",
        ]
        self.stdout.write("\n".join(lines))

        exit_code = 0
        while not stopping:
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
        self.stdout.write("Stopped the web server, the worker and beat.")
        sys.exit(exit_code)
