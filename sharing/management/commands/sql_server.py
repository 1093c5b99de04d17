"""`manage.py sql_server`: the PostgreSQL wire-protocol endpoint of federated queries
(sharing/federation/wire/, docs/query.md) on PORTAL_SQL_HOST:PORTAL_SQL_PORT, until
SIGTERM or SIGINT. `make run` starts it beside the web server; deploy/ runs it as a
process of its own (deploy/Procfile, deploy/systemd/portal-sql.service)."""

import asyncio

from django.conf import settings
from django.core.management.base import BaseCommand

from sharing.federation.wire.server import wire_serve


class Command(BaseCommand):
    help = "Serve federated SQL over the PostgreSQL wire protocol until SIGTERM/SIGINT."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=settings.PORTAL_SQL_HOST)
        parser.add_argument("--port", type=int, default=settings.PORTAL_SQL_PORT)

    def handle(self, *args, host: str, port: int, **options):
        def started(sockets) -> None:
            where = (
                ", ".join("{}:{}".format(*socket.getsockname()[:2]) for socket in sockets)
                or f"{host}:{port}"
            )
            self.stdout.write(
                f"SQL endpoint listening on {where}: psql -h {host} -p {port} -U <username> "
                "(password: one of your API tokens)"
            )
            self.stdout.flush()

        asyncio.run(wire_serve(host=host, port=port, started=started))
        self.stdout.write("SQL endpoint stopped.")
