"""The embed demo's host page: what another company's web application does to show a
portal embed, served with Python's standard http.server on its own local port (so on
another origin than the portal) by `manage.py embed_demo_host`.

Each page load plays the host's backend: it signs a fresh token (5 minutes) for the
chosen tenant with the host's private key, then shows the embed twice, with the one-line
script snippet and as a plain iframe, beside the source of both. No sign-in: the token is
the host's word for which tenant the viewer may see. Request threads touch no database:
the embed's id, the key id and the private key are loaded once, at start (`DemoHost`).
"""

from __future__ import annotations

from html import escape
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from products.demo.embeds import DemoHost
from sharing.embeds.host import embed_token_sign

TOKEN_SECONDS = 300

STYLE = """
body { font: 16px/1.5 system-ui, sans-serif; margin: 0; color: #1d2433; background: #f4f1ea; }
header { background: #2f3e2c; color: #fff; padding: 1rem 2rem; }
header h1 { margin: 0; font-size: 1.4rem; }
header p { margin: .25rem 0 0; opacity: .85; }
header a { color: #fff; }
main { max-width: 64rem; margin: 0 auto; padding: 1rem 2rem 3rem; }
nav.tenants a { display: inline-block; margin: 0 .5rem .5rem 0; padding: .3rem .8rem;
  border: 1px solid #2f3e2c; border-radius: 1rem; color: #2f3e2c; text-decoration: none; }
nav.tenants a[aria-current="page"] { background: #2f3e2c; color: #fff; }
section { background: #fff; border-radius: .5rem; padding: 1rem 1.5rem; margin: 1rem 0; }
section h2 { margin-top: 0; font-size: 1.1rem; }
pre { background: #1d2433; color: #e8e8e8; padding: .75rem; border-radius: .35rem;
  overflow-x: auto; white-space: pre-wrap; word-break: break-all; font-size: .8rem; }
iframe { border: 1px solid #ddd; border-radius: .35rem; }
"""


def host_page(*, host: DemoHost, portal_url: str, tenant: str, page_origin: str) -> str:
    """The page for `tenant` (one of the host's), with a token signed now."""
    portal = portal_url.rstrip("/")
    names = dict(host.tenants)
    token = embed_token_sign(
        private_key=host.private_key,
        kid=host.kid,
        embed_id=host.embed_id,
        params={"tenant": tenant},
        seconds=TOKEN_SECONDS,
    )
    embed_url = f"{portal}/embed/{host.embed_id}/"
    loader_url = f"{portal}/static/js/embed-loader.js"
    snippet = (
        f'<script src="{escape(loader_url)}" data-embed="{escape(embed_url)}" '
        f'data-token="{escape(token)}" async></script>'
    )
    iframe = (
        f'<iframe src="{escape(embed_url)}#token={escape(token)}" title="{escape(host.title)}" '
        'width="100%" height="460" referrerpolicy="origin" loading="lazy"></iframe>'
    )
    signing = (
        "from sharing.embeds.host import embed_token_sign  # or any JWT library\n\n"
        "token = embed_token_sign(\n"
        f"    private_key=open({host.key_file!r}).read(),  # never sent to the portal\n"
        f"    kid={host.kid!r},\n"
        f"    embed_id={host.embed_id!r},\n"
        f"    params={{'tenant': {tenant!r}}},  # who this viewer is: locked by the portal\n"
        f"    seconds={TOKEN_SECONDS},\n"
        ")"
    )
    links = "".join(
        f'<a href="/?tenant={escape(code)}"'
        + (' aria-current="page"' if code == tenant else "")
        + f">{escape(name)}</a>"
        for code, name in host.tenants
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="origin">
<title>Demo host: {escape(host.title)} for {escape(names[tenant])}</title>
<style>{STYLE}</style>
</head>
<body>
<header>
  <h1>Demo host application</h1>
  <p>Another company's web app on its own origin ({escape(page_origin)}), showing a chart
  from the data-product portal at
  <a href="{escape(portal)}/">{escape(portal)}</a>.</p>
</header>
<main>
  <p>This page plays the host's backend: on each load it signs a token for the tenant
  chosen below with the host's Ed25519 private key (<code>{escape(host.key_file)}</code>;
  the portal holds only its public key, registered as the embed's application
  <em>Demo host</em>). The token locks <code>tenant={escape(tenant)}</code>
  ({escape(names[tenant])}): the portal shows that country's net revenue only, whatever the
  page asks, and only on the origins the embed allows. It expires in
  {TOKEN_SECONDS // 60} minutes: reload for a new one. Nobody signs in. A notice above the
  chart is the portal's: while the product has an open incident or a failing check (the
  demo's Orders has both), its embeds tell their viewers.</p>
  <nav class="tenants" aria-label="Tenant">{links}</nav>

  <section>
    <h2>1. The one-line snippet</h2>
    {snippet}
    <pre><code>{escape(snippet)}</code></pre>
  </section>

  <section>
    <h2>2. A plain iframe</h2>
    {iframe}
    <pre><code>{escape(iframe)}</code></pre>
  </section>

  <section>
    <h2>How the backend signs the token</h2>
    <pre><code>{escape(signing)}</code></pre>
  </section>
</main>
</body>
</html>
"""


class HostPageHandler(BaseHTTPRequestHandler):
    """GET / (`?tenant=` one of the host's tenants; the first when absent)."""

    server: HostServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        parts = urlsplit(self.path)
        if parts.path != "/":
            self._answer(HTTPStatus.NOT_FOUND, "text/plain", b"Not found: the page is /.\n")
            return
        host = self.server.host
        codes = [code for code, _ in host.tenants]
        tenant = (parse_qs(parts.query).get("tenant") or [codes[0]])[0]
        if tenant not in codes:
            message = f"Unknown tenant: choose one of {', '.join(codes)}.\n"
            self._answer(HTTPStatus.NOT_FOUND, "text/plain", message.encode())
            return
        page = host_page(
            host=host,
            portal_url=self.server.portal_url,
            tenant=tenant,
            page_origin=f"http://{self.headers.get('Host') or self.server.address}",
        )
        self._answer(HTTPStatus.OK, "text/html", page.encode())

    def _answer(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")  # a fresh token per load
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - http.server's name
        if self.server.quiet:
            return
        super().log_message(format, *args)


class HostServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, *, host: DemoHost, portal_url: str, port: int, bind: str, quiet: bool):
        self.host = host
        self.portal_url = portal_url.rstrip("/")
        self.quiet = quiet
        super().__init__((bind, port), HostPageHandler)
        self.address = f"{bind}:{self.server_address[1]}"


def host_server(
    *, host: DemoHost, portal_url: str, port: int, bind: str = "127.0.0.1", quiet: bool = False
) -> HostServer:
    """The host page's server, listening (port 0: one the system picks); the caller runs
    `serve_forever()` and closes it."""
    return HostServer(host=host, portal_url=portal_url, port=port, bind=bind, quiet=quiet)
