"""`python manage.py embed_demo_host`: the embed demo's host page, a small web page on its
own local port that signs a token per load and shows the demo's embed (products.demo
.embed_host). `make run` starts it (runstack) after seeding the demo.

At start it allows the page's origin (http://127.0.0.1:PORT and http://localhost:PORT) on
the demo embed, so the chart shows whichever port the page listens on.
"""

import os
import signal
import sys

from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from products.demo.embed_host import host_server
from products.demo.embeds import (
    DEFAULT_PORTAL_PORT,
    DemoHostUnavailable,
    demo_embed_origins_set,
    demo_host,
    host_port,
)


class Command(BaseCommand):
    help = "Serve the embed demo's host page (a host application showing the demo embed)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--port",
            type=int,
            default=None,
            help="Port of the page (default EMBED_DEMO_HOST_PORT, else the portal's PORT + 1).",
        )
        parser.add_argument("--bind", default="127.0.0.1", help="Address to listen on.")
        parser.add_argument(
            "--portal-url",
            default=None,
            help="The portal's address, where the embed is loaded from (default PORTAL_URL, "
            "else http://127.0.0.1:PORT).",
        )

    def handle(self, *args, port, bind, portal_url, verbosity, **options):
        port = host_port() if port is None else port
        portal_url = (
            portal_url
            or os.environ.get("PORTAL_URL")
            or f"http://127.0.0.1:{os.environ.get('PORT') or DEFAULT_PORTAL_PORT}"
        ).rstrip("/")
        try:
            host = demo_host()
        except DemoHostUnavailable as exc:
            raise CommandError(str(exc)) from exc
        try:
            server = host_server(
                host=host, portal_url=portal_url, port=port, bind=bind, quiet=verbosity < 2
            )
        except OSError as exc:
            raise CommandError(f"Cannot listen on {bind}:{port}: {exc.strerror}.") from exc
        port = server.server_address[1]
        demo_embed_origins_set(port=port)
        connections.close_all()  # the page's requests need no database
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        self.stdout.write(
            f"Embed demo (a host application's page): http://{bind}:{port}/ showing "
            f"{host.title!r} from {portal_url}"
        )
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
